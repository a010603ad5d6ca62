"""Every LiftedCL config loads and builds its model (MMPose configs: test_configs_mmpose.py)."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from liftedcl_mm.registry import MODELS
from liftedcl_mm.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs')


def _configs(base: bool):
    files = sorted(glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True))
    files = [f for f in files if not osp.relpath(f, CONFIG_DIR).startswith('mmpose')
             and "_base_ = ['../mmpose/" not in open(f).read()]
    is_base = [osp.relpath(f, CONFIG_DIR).startswith('_base_') for f in files]
    return [osp.relpath(f, CONFIG_DIR) for f, b in zip(files, is_base) if b == base]


ABLATION_WEIGHTS = {
    'ablations/liftedcl_r50_inv_coco.py': (0.5, 0.0, 0.0),
    'ablations/liftedcl_r50_inv-equiv_coco.py': (0.5, 0.5, 0.0),
    'ablations/liftedcl_r50_lifting_coco.py': (0.0, 0.0, 0.5),
    'ablations/liftedcl_r50_inv-equiv-adv_coco.py': (0.5, 0.5, 0.5),
    'liftedcl_r50_coco.py': (0.5, 0.5, 0.5),
}


def test_expected_configs_exist():
    found = set(_configs(base=False))
    assert set(ABLATION_WEIGHTS) | {'liftedcl_tiny_demo.py'} <= found
    for name in ('_base_/models/liftedcl_r50.py', '_base_/schedules/liftedcl_sgd_coslr_200e.py',
                 '_base_/default_runtime.py'):
        assert name in _configs(base=True)


@pytest.mark.parametrize('name', _configs(base=True))
def test_base_config_loads(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert len(cfg.keys()) > 0


@pytest.mark.parametrize('name', _configs(base=False))
def test_config_builds_model(name, tmp_path):
    register_all_modules()
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert cfg.default_scope == 'liftedcl_mm'
    prior_file = cfg.model.get('prior', {}).get('skeleton_file')
    if prior_file and not osp.isfile(prior_file):  # the authors' prior is not shipped
        from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
        np.save(tmp_path / 'prior.npy', sample_skeletons(16, seed=0))
        cfg.model.prior.update(skeleton_file=str(tmp_path / 'prior.npy'), up_axis='+z')
    model = MODELS.build(cfg.model)
    if name not in ABLATION_WEIGHTS and cfg.model.type != 'LiftedCL':
        return  # another algorithm's config (e.g. a peer for benchmarks): building is the test
    assert cfg.model.type == 'LiftedCL'
    assert cfg.optim_wrapper.constructor == 'GeneratorDiscriminatorOptimWrapperConstructor'
    weights = (cfg.model.loss_inv.loss_weight, cfg.model.loss_equiv.loss_weight,
               cfg.model.loss_adv.loss_weight)
    if name in ABLATION_WEIGHTS:
        assert weights == ABLATION_WEIGHTS[name]
        assert cfg.model.backbone.depth == 50
        assert cfg.model.queue_len == 16384
        assert cfg.train_dataloader.batch_size == 32
        assert cfg.train_cfg.max_epochs == 200
    inv, equiv, adv = weights
    assert (model.neck is None) == (inv == 0)
    assert (model.equiv_neck is None) == (equiv == 0)
    assert (model.lifting_head is None) == (adv == 0)
    assert (model.discriminator is None) == (adv == 0)
    assert (model.encoder_k is None) == (inv == 0 and equiv == 0)
    if adv > 0:
        assert model.prior_skeletons.shape[1:] == (17, 3)


def test_paper_setting_values():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'liftedcl_r50_coco.py'))
    assert cfg.model.loss_inv.temperature == 0.2
    assert cfg.model.loss_equiv.temperature == 0.2
    assert cfg.model.momentum == pytest.approx(0.001)
    assert cfg.model.align_size == 16
    assert cfg.model.prior.num_samples == 10000 and cfg.model.prior.seed == 0
    gen = cfg.optim_wrapper.generator.optimizer
    assert (gen.type, gen.lr, gen.momentum, gen.weight_decay) == ('SGD', 0.03, 0.9, 1e-4)
    assert cfg.optim_wrapper.discriminator.optimizer.lr == 0.03
    assert cfg.param_scheduler.generator[0].type == 'CosineAnnealingLR'
    assert cfg.param_scheduler.discriminator[0].type == 'ConstantLR'
    assert cfg.model_wrapper_cfg.type == 'MMSeparateDistributedDataParallel'


def test_tiny_demo_trains_with_runner(tmp_path):
    torch.set_num_threads(1)
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'liftedcl_tiny_demo.py'))
    assert cfg.model.backbone.depth == 18 and cfg.model.queue_len == 64
    assert cfg.train_dataloader.batch_size == 4
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 3  # the schedules follow the loop: no T_max/end to change
    cfg.default_hooks.checkpoint.interval = 3
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert int(runner.model.num_steps) == 3
    # Schedules per optimizer: cosine for the encoder, constant for the discriminator.
    lrs = {k: w.param_groups[0]['lr'] for k, w in runner.optim_wrapper.items()}
    assert lrs['discriminator'] == pytest.approx(0.03)
    assert lrs['generator'] < 0.03
    assert osp.isfile(osp.join(str(tmp_path), 'iter_3.pth'))
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss', 'train/loss_inv', 'train/loss_equiv', 'train/loss_adv_g',
                'train/loss_d_real', 'train/loss_d_fake', 'train/d_acc'):
        assert key in scalars, key
        assert torch.isfinite(torch.tensor(scalars[key].current()))


def test_vis_lifted_skeletons_tool(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        'vis_lifted_skeletons', osp.join(ROOT, 'tools', 'visualization',
                                         'vis_lifted_skeletons.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    register_all_modules()
    config = osp.join(CONFIG_DIR, 'liftedcl_tiny_demo.py')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    ckpt = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), ckpt)
    images = sorted(glob.glob(osp.join(ROOT, 'data', 'demo', 'coco_human', 'crops', '**',
                                       '*.jpg'), recursive=True))[:2]
    assert len(images) == 2
    out = tmp_path / 'grid.png'
    tool.main([str(ckpt), config, *images, '--out', str(out)])
    png = out.read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 1000
    # The drawn skeletons are the model's own lifting of the resized, normalised views.
    loaded, _ = tool.build_model(config, str(ckpt))
    arr = tool.load_images(images, 64)
    assert arr.shape == (2, 64, 64, 3)
    joints = tool.lift(loaded, arr)
    model.eval()
    x = torch.from_numpy(arr[..., ::-1].copy()).permute(0, 3, 1, 2).float()
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    with torch.no_grad():
        expected = model.lifting_head(model.backbone((x - mean) / std))
    np.testing.assert_allclose(joints, expected.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        tool.load_images([str(tmp_path / 'missing.jpg')], 64)
    torch.save(dict(state_dict={}), tmp_path / 'empty.pth')
    with pytest.raises(ValueError, match='lacks'):
        tool.build_model(config, str(tmp_path / 'empty.pth'))
