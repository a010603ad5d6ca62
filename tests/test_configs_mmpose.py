"""Every MMPose fine-tuning config loads, builds, and initialises from a LiftedCL backbone."""
import glob
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# configs/mmpose/ and the MMPose configs of other folders (they inherit from configs/mmpose/,
# e.g. the learning study's fine-tuning arm)
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'mmpose', '*.py'))) + [
    p for p in sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*.py')))
    if "_base_ = ['../mmpose/" in open(p).read()]
VARIANTS = {  # dataset -> (ImageNet config, LiftedCL config)
    'coco': ('simplebaseline_res50_coco-256x192_imagenet.py',
             'simplebaseline_res50_coco-256x192_liftedcl.py'),
    'mpii': ('simplebaseline_res50_mpii-256x256_imagenet.py',
             'simplebaseline_res50_mpii-256x256_liftedcl.py'),
    'h36m': ('simplebaseline_res50_h36m-256x256_imagenet.py',
             'simplebaseline_res50_h36m-256x256_liftedcl.py'),
    'h36m-3d': ('rle3d_res50_h36m-256x256_imagenet.py',
                'rle3d_res50_h36m-256x256_liftedcl.py'),
}
LIFTEDCL_CKPT = 'work_dirs/liftedcl_r50_coco/backbone.pth'


def _cfg(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'mmpose', name))


def _build(model_cfg):
    import liftedcl_mm  # noqa: F401  (LiftingHeatmapHead, KinematicPriorLoss)
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmpose'):
        return MODELS.build(model_cfg)


def _random_backbone_file(path, depth, **kwargs):
    """A ResNet state dict with distinguishable values (BN stats too), saved as plain tensors."""
    from mmpose.models.backbones import ResNet
    torch.manual_seed(depth)
    net = ResNet(depth, **kwargs)
    for buf in net.buffers():
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)
    state = OrderedDict((k, v.clone()) for k, v in net.state_dict().items())
    torch.save(state, path)
    return state


def _assert_loaded(model, expected):
    got = model.backbone.state_dict()
    assert set(got) == set(expected), sorted(set(got) ^ set(expected))  # 0 missing/unexpected
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


@pytest.fixture(scope='module')
def r50_backbone(tmp_path_factory):
    path = tmp_path_factory.mktemp('r50') / 'backbone.pth'
    return str(path), _random_backbone_file(path, 50)


def test_all_configs_listed():
    names = {osp.basename(p) for p in CONFIGS}
    expected = {n for pair in VARIANTS.values() for n in pair}
    expected |= {'simplebaseline_res50_coco-256x192_liftedcl-kinematic.py',
                 'simplebaseline_res50_h36m-256x256_liftedcl-kinematic.py',
                 'simplebaseline_tiny_demo.py'}
    assert expected <= names, expected - names


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpose'
    assert 'liftedcl_mm' in cfg.custom_imports['imports']
    model = _build(cfg.model)
    if osp.basename(path).startswith('rle3d_'):  # image-based 3D (Table 4, MPJPE)
        assert cfg.model.type == 'PoseLifter'
        assert model.head.num_joints == 17
    else:
        assert cfg.model.type == 'TopdownPoseEstimator'
        assert model.head.out_channels == (16 if 'mpii' in osp.basename(path) else 17)
    # inherited from MMPose's configs by mim-style path, not copied
    text = open(path).read()
    assert any(f"_base_ = ['{prefix}" in text for prefix in ('mmpose::', './', '../mmpose/'))


@pytest.mark.parametrize('dataset', sorted(VARIANTS))
def test_variants_differ_only_in_init(dataset, r50_backbone):
    imagenet, liftedcl = (_cfg(name) for name in VARIANTS[dataset])
    assert imagenet.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='torchvision://resnet50')
    assert liftedcl.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=LIFTEDCL_CKPT)
    a, b = imagenet.to_dict(), liftedcl.to_dict()
    a['model']['backbone'].pop('init_cfg')
    b['model']['backbone'].pop('init_cfg')
    assert a == b

    path, expected = r50_backbone
    liftedcl.model.backbone.init_cfg.checkpoint = path
    model = _build(liftedcl.model)
    model.init_weights()
    _assert_loaded(model, expected)


@pytest.mark.parametrize('name', ['simplebaseline_res50_coco-256x192_liftedcl-kinematic.py',
                                  'simplebaseline_res50_h36m-256x256_liftedcl-kinematic.py'])
def test_kinematic_variant(r50_backbone, name):
    from liftedcl_mm.models.heads import LiftingHeatmapHead
    cfg = _cfg(name)
    path, expected = r50_backbone
    cfg.model.backbone.init_cfg.checkpoint = path
    model = _build(cfg.model)
    assert isinstance(model.head, LiftingHeatmapHead)
    assert model.head.lifting_head.in_channels == 2048
    assert model.head.loss_kinematic_module.loss_weight == pytest.approx(1e-2)
    model.init_weights()
    _assert_loaded(model, expected)


def test_h36m_uses_mmpose_metainfo():
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    cfg = _cfg('simplebaseline_res50_h36m-256x256_imagenet.py')
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        assert loader.dataset.type == 'BaseCocoStyleDataset'
        assert 'headbox_file' not in loader.dataset  # no MPII leftovers
    meta = parse_pose_metainfo(cfg.train_dataloader.dataset.metainfo)
    assert meta['dataset_name'] == 'h36m' and meta['num_keypoints'] == 17
    from liftedcl_mm.skeleton.h36m import H36M_JOINT_NAMES
    names = [meta['keypoint_id2name'][i] for i in range(17)]
    assert len(names) == len(H36M_JOINT_NAMES) == 17


def _load_extractor():
    path = osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py')
    spec = importlib.util.spec_from_file_location('extract_backbone', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_demo_initialises_from_real_liftedcl_checkpoint(tmp_path):
    """The tiny pre-training model's query backbone fits the tiny fine-tuning backbone."""
    import liftedcl_mm  # noqa: F401
    from liftedcl_mm.registry import MODELS
    pre_cfg = Config.fromfile(osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py'))
    with DefaultScope.overwrite_default_scope('liftedcl_mm'):
        pre_model = MODELS.build(pre_cfg.model)
    with torch.no_grad():
        for buf in pre_model.backbone.buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    full = tmp_path / 'iter_20.pth'
    torch.save(dict(meta=dict(iter=20), state_dict=pre_model.state_dict()), full)
    out = tmp_path / 'backbone.pth'
    _load_extractor().convert(str(full), str(out))

    cfg = _cfg('simplebaseline_tiny_demo.py')
    assert cfg.model.backbone.init_cfg.checkpoint == 'work_dirs/demo/backbone.pth'
    # relative to the config file, so it is found from any working directory
    assert osp.realpath(cfg.train_dataloader.dataset.data_root) == osp.realpath(
        osp.join(ROOT, 'data', 'demo', 'coco'))
    # AP, and PCK at two thresholds under their own prefixes (both would be 'PCK' otherwise)
    assert [(m.type, m.get('prefix')) for m in cfg.val_evaluator] == [
        ('CocoMetric', None), ('PCKAccuracy', 'pck0.05'), ('PCKAccuracy', 'pck0.2')]
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': str(out)})  # as --cfg-options
    model = _build(cfg.model)
    model.init_weights()
    _assert_loaded(model, pre_model.backbone.state_dict())
    # and the heatmaps have the codec's size
    inputs = torch.zeros(1, 3, *cfg.codec['input_size'][::-1])
    heatmaps = model.head(model.extract_feat(inputs))
    assert tuple(heatmaps.shape[-2:]) == tuple(cfg.codec['heatmap_size'][::-1])


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_every_mmpose_config_saves_atomically(path):
    import liftedcl_mm  # noqa: F401
    from mmpose.registry import HOOKS
    from mmpose.utils import register_all_modules

    from liftedcl_mm.engine.hooks.atomic_checkpoint_hook import AtomicCheckpointHook
    register_all_modules(init_default_scope=False)
    hook_cfg = Config.fromfile(path).default_hooks.checkpoint
    with DefaultScope.overwrite_default_scope('mmpose'):
        hook = HOOKS.build(hook_cfg)
    assert isinstance(hook, AtomicCheckpointHook)
    assert hook.save_best is not None  # MMPose's own best-checkpoint setting is kept


def _load_tool(*parts):
    path = osp.join(ROOT, 'tools', *parts)
    spec = importlib.util.spec_from_file_location('tool_' + parts[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_h36m_2d_reads_mmpose_converter_output_and_reports_jdr():
    """Paper Table 3 (JDR): h36m_to_coco.py's json, Qiu et al.'s schedule, JDRMetric."""
    prepare = _load_tool('dataset_converters', 'prepare_h36m.py')
    cfg = _cfg('simplebaseline_res50_h36m-256x256_imagenet.py')
    for split, loader in (('train', cfg.train_dataloader), ('test', cfg.val_dataloader)):
        _, ann = prepare.annotation_paths(cfg.data_root, 5, split)
        assert osp.join(loader.dataset.data_root, loader.dataset.ann_file) == ann
        assert loader.dataset.data_prefix == dict(img='images/')  # --full-img-name paths
    assert cfg.train_dataloader.dataset.sample_interval == 5  # Qiu et al.'s [::5]
    jdr = [m for m in cfg.val_evaluator if m['type'] == 'JDRMetric']
    assert jdr[0] == dict(type='JDRMetric', thr=0.5, head_size=25.6)
    assert jdr[1]['head_size'] == 'joints' and jdr[1]['head_joints'] == (9, 10)
    assert cfg.default_hooks.checkpoint.save_best == 'JDR/mean'
    assert cfg.model.test_cfg.flip_test is False
    assert cfg.train_cfg.max_epochs == 30 and cfg.optim_wrapper.optimizer.lr == 1e-3
    assert [s['milestones'] for s in cfg.param_scheduler] == [[20, 25]]


def test_h36m_3d_config():
    """Paper Table 4 (MPJPE / PA-MPJPE): preprocess_h36m.py's npz, Li et al.'s schedule."""
    prepare = _load_tool('dataset_converters', 'prepare_h36m.py')
    cfg = _cfg('rle3d_res50_h36m-256x256_imagenet.py')
    for split, loader in (('train', cfg.train_dataloader), ('test', cfg.val_dataloader)):
        npz, _ = prepare.annotation_paths(cfg.data_root, 5, split)
        assert loader.dataset.type == 'Human36mImageDataset'
        assert osp.join(loader.dataset.data_root, loader.dataset.ann_file) == npz
        assert loader.dataset.camera_param_file == 'annotation_body3d/cameras.pkl'
        assert loader.dataset.scale_3d == 1000.  # MPJPE in mm
    assert sorted(m['mode'] for m in cfg.val_evaluator if m['type'] == 'MPJPE') == [
        'mpjpe', 'p-mpjpe']
    assert cfg.model.head.type == 'UVDRegressionHead' and cfg.model.head.loss.type == 'RLELoss3D'
    assert cfg.model.head.decoder.type == 'RootRelativeUVD'
    assert cfg.model.test_cfg.flip_test is False
    for key in ('camera_param', 'target_root', 'target_img_path', 'input_center'):
        assert key in cfg.meta_keys
    assert cfg.optim_wrapper.clip_grad.max_norm == 35
    assert cfg.train_cfg.max_epochs == 200
    assert [s['milestones'] for s in cfg.param_scheduler] == [[90, 120]]
    model = _build(cfg.model)
    from liftedcl_mm.models.heads import UVDRegressionHead
    from liftedcl_mm.models.losses import RLELoss3D
    assert isinstance(model.head, UVDRegressionHead)
    assert isinstance(model.head.loss_module, RLELoss3D)
    coords, sigma = model.head(model.extract_feat(torch.zeros(1, 3, 64, 64)))
    assert coords.shape == sigma.shape == (1, 17, 3)
