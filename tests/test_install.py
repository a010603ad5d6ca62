"""The installed stack and our registries, as a new user's config sees them."""
import subprocess
import sys
from pathlib import Path

from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]


def test_stack_imports():
    import mmcv
    import mmcv.ops  # noqa: F401  full mmcv with ops, needed by mmpose/mmdet
    import mmpose.models  # noqa: F401
    import mmpretrain.models  # noqa: F401
    import numpy as np
    import torch
    from xtcocotools.coco import COCO  # noqa: F401  breaks under numpy 2

    import liftedcl_mm
    assert mmcv.__version__ == '2.1.0'
    assert np.__version__.startswith('1.')
    assert torch.__version__.startswith('2.14.1')
    assert liftedcl_mm.__version__


def test_registry_finds_mmpretrain_and_mmpose_types_from_config():
    from liftedcl_mm.registry import MODELS
    from liftedcl_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmpose.models  # noqa: F401  (registers mmpose's types)

    cfg = Config(
        dict(
            backbone=dict(type='ResNet', depth=18),
            pose=dict(
                type='mmpose.TopdownPoseEstimator',
                backbone=dict(type='ResNet', depth=18),
                head=dict(
                    type='HeatmapHead',
                    in_channels=512,
                    out_channels=17,
                    loss=dict(type='KeypointMSELoss')),
                data_preprocessor=dict(type='PoseDataPreprocessor'))))
    from mmpretrain.models import ResNet
    assert MODELS.get('ResNet') is ResNet
    backbone = MODELS.build(cfg.backbone)
    assert isinstance(backbone, ResNet)
    from mmpose.models import TopdownPoseEstimator
    assert MODELS.get('mmpose.TopdownPoseEstimator') is TopdownPoseEstimator
    # MMPose's nested components live in the sibling 'mmpose' scope: a fine-tuning config sets
    # default_scope='mmpose' (and imports liftedcl_mm), which our registry then follows.
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpose'):
        pose = MODELS.build(cfg.pose)
    assert isinstance(pose, TopdownPoseEstimator)
    assert MODELS.scope == 'liftedcl_mm'
    assert MODELS.parent is mmpretrain_models_registry()


def mmpretrain_models_registry():
    from mmpretrain.registry import MODELS
    return MODELS


def test_registries_are_children_of_mmpretrain():
    import mmpretrain.registry as parent

    import liftedcl_mm.registry as ours
    for name in ('MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS',
                 'PARAM_SCHEDULERS', 'RUNNERS', 'LOOPS'):
        assert getattr(ours, name).parent is getattr(parent, name), name
        assert getattr(ours, name).scope == 'liftedcl_mm'


def test_mim_sees_the_package_configs_and_tools():
    import liftedcl_mm
    mim_root = Path(liftedcl_mm.__file__).parent / '.mim'
    assert (mim_root / 'tools' / 'train.py').is_file()
    assert (mim_root / 'configs').is_dir()
    out = subprocess.run([sys.executable, '-m', 'mim', 'list'], capture_output=True, text=True,
                         check=True).stdout
    assert 'liftedcl_mm' in out or 'liftedcl-mm' in out
