import glob
import math
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
import make_synthetic_humans  # noqa: E402
import study_finetune as tool  # noqa: E402

# two iterations of a few people: the code path, not the schedule
TINY = {
    'train_cfg.max_iters': 2,
    'train_dataloader.batch_size': 4,
    'test_dataloader.batch_size': 16,
    'default_hooks.checkpoint.interval': 2,
    'log_level': 'WARNING',
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp('synth')
    argv = ['--out', str(out), '--num-train', '48', '--num-val', '16', '--workers', '0',
            '--no-progress', '--no-crops']
    assert make_synthetic_humans.main(argv) == 0
    return str(out)


def _pretraining_checkpoint(path, config):
    """A pre-training checkpoint as MMEngine saves it, from an untrained model of ``config``."""
    from mmengine.registry import DefaultScope

    from liftedcl_mm.registry import MODELS
    from liftedcl_mm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'study', config))
    if cfg.model.get('prior'):
        cfg.model.prior.num_samples = 64
    torch.manual_seed(1)
    with DefaultScope.overwrite_default_scope('liftedcl_mm'):
        model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return {k[len('backbone.'):]: v for k, v in model.state_dict().items()
            if k.startswith('backbone.')}


def _assert_metrics(result):
    for key in tool.REQUIRED + ('train_s', 'test_s'):
        assert key in result, key
        assert isinstance(result[key], float) and math.isfinite(result[key]), key


def test_config_is_the_study_backbone_with_coco_metric_and_pck():
    cfg = Config.fromfile(tool.CONFIG)
    backbone = cfg.model.backbone
    assert (backbone.depth, backbone.base_channels, backbone.init_cfg) == (18, 32, None)
    assert cfg.model.head.in_channels == 256
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert [e.get('prefix') for e in cfg.test_evaluator] == [None, 'pck0.05', 'pck0.2']
    assert cfg.test_dataloader.dataset.data_root.endswith('data/synthetic_humans/coco/')


@pytest.mark.parametrize('config', ['liftedcl_r18_synth.py', 'mocov2_mmpretrain_r18_synth.py'])
def test_build_config_extracts_the_query_backbone(config, data, tmp_path):
    source = str(tmp_path / 'pretrain.pth')
    expected = _pretraining_checkpoint(source, config)
    cfg, state = tool.build_config(source, str(tmp_path / 'ft'), data_root=data, seed=3)
    backbone = str(tmp_path / 'ft' / 'backbone.pth')
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=backbone)
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    # the data root given (the study's, holding coco/) reaches the loaders and the COCO metric
    coco = osp.join(data, 'coco', '')
    assert cfg.train_dataloader.dataset.data_root == coco
    assert cfg.test_dataloader.dataset.data_root == coco
    assert cfg.test_evaluator[0].ann_file == osp.join(coco, 'annotations',
                                                      'person_keypoints_val2017.json')
    assert cfg.randomness.seed == 3


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'iter_1000.pth')
    with pytest.raises(FileNotFoundError, match='nowhere/iter_1000.pth'):
        tool.finetune(missing, str(tmp_path / 'ft'))


def test_finetune_from_random_init_and_from_a_checkpoint(data, tmp_path):
    torch.set_num_threads(1)
    result = tool.finetune(None, str(tmp_path / 'random'), data_root=data, cfg_options=TINY)
    _assert_metrics(result)
    assert not osp.exists(tmp_path / 'random' / 'backbone.pth')

    source = str(tmp_path / 'liftedcl.pth')
    expected = _pretraining_checkpoint(source, 'liftedcl_r18_synth.py')
    # lr 0 leaves the convolutions as initialised, so the fine-tuned model shows its init
    frozen = dict(TINY, **{'optim_wrapper.optimizer.lr': 0.0})
    result = tool.finetune(source, str(tmp_path / 'pre'), data_root=data, cfg_options=frozen)
    _assert_metrics(result)
    # each run logs into its own work_dir (MMEngine's named instances are not shared)
    assert glob.glob(str(tmp_path / 'pre' / '*' / 'vis_data' / 'config.py'))
    tuned = torch.load(str(tmp_path / 'pre' / 'iter_2.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    for key in ('conv1.weight', 'layer1.0.conv1.weight', 'layer4.1.conv2.weight'):
        assert torch.equal(tuned['backbone.' + key], expected[key]), key


def test_backbone_that_does_not_fit_is_refused(tmp_path):
    state = {'conv1.weight': torch.zeros(64, 3, 7, 7)}
    model = torch.nn.Module()
    model.conv1 = torch.nn.Conv2d(3, 32, 7, bias=False)
    model.bn1 = torch.nn.BatchNorm2d(32)
    with pytest.raises(ValueError, match='does not fit'):
        tool._check_backbone_fits(model, state, 'x.pth')
