import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')
PY = sys.executable


def _load_train():
    spec = importlib.util.spec_from_file_location('train_tool', TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train = _load_train()


def _env(extra_path=None):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    if extra_path:
        env['PYTHONPATH'] = f'{extra_path}:{env.get("PYTHONPATH", "")}'
    return env


def _run(args, timeout=300, env=None):
    return subprocess.run([PY, TRAIN] + args, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env or _env())


# ---------------------------------------------------------------- merge_args (in process)
def _args(*argv):
    return train.parse_args([TINY, *argv])


def test_defaults_work_dir_and_gloo():
    cfg = train.merge_args(Config.fromfile(TINY), _args())
    assert cfg.work_dir == osp.join('./work_dirs', 'liftedcl_tiny_demo')
    assert cfg.launcher == 'none'
    if not torch.cuda.is_available():
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.default_scope == 'liftedcl_mm'
    cfg = train.merge_args(Config.fromfile(TINY), _args('--work-dir', 'somewhere'))
    assert cfg.work_dir == 'somewhere'


def test_resume_auto_and_path(tmp_path):
    cfg = train.merge_args(Config.fromfile(TINY), _args('--resume'))
    assert cfg.resume is True and cfg.load_from is None
    cfg = train.merge_args(Config.fromfile(TINY), _args('--resume', 'auto'))
    assert cfg.resume is True and cfg.load_from is None
    ckpt = tmp_path / 'iter_3.pth'
    ckpt.write_bytes(b'x')
    cfg = train.merge_args(Config.fromfile(TINY), _args('--resume', str(ckpt)))
    assert cfg.resume is True and cfg.load_from == str(ckpt)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        train.merge_args(Config.fromfile(TINY), _args('--resume', str(tmp_path / 'missing.pth')))


def test_amp_switches_each_sub_wrapper_and_single_wrapper():
    cfg = train.merge_args(Config.fromfile(TINY), _args('--amp'))
    assert set(cfg.optim_wrapper) >= {'generator', 'discriminator'}
    for key in ('generator', 'discriminator'):
        assert cfg.optim_wrapper[key].type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper[key].loss_scale == 'dynamic'
        assert cfg.optim_wrapper[key].optimizer.type == 'SGD'
    assert cfg.optim_wrapper.constructor == 'GeneratorDiscriminatorOptimWrapperConstructor'

    pose = Config.fromfile(osp.join(ROOT, 'configs', 'mmpose', 'simplebaseline_tiny_demo.py'))
    pose = train.merge_args(pose, train.parse_args(['x.py', '--amp']))
    assert pose.optim_wrapper.type == 'AmpOptimWrapper'
    assert pose.optim_wrapper.optimizer.type == 'Adam'
    assert pose.default_scope == 'mmpose'  # respected, not replaced

    bad = Config(dict(optim_wrapper=dict(type='MyWrapper', optimizer=dict(type='SGD'))))
    with pytest.raises(ValueError, match='MyWrapper'):
        train.enable_amp(bad)


def test_cfg_options_and_auto_scale_lr():
    cfg = train.merge_args(
        Config.fromfile(TINY),
        _args('--auto-scale-lr', '--cfg-options', 'train_cfg.max_iters=7',
              'model.queue_len=32'))
    assert cfg.train_cfg.max_iters == 7 and cfg.model.queue_len == 32
    assert cfg.auto_scale_lr.enable is True
    bad = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD'))))
    with pytest.raises(ValueError, match='base_batch_size'):
        train.merge_args(bad, train.parse_args(['x.py', '--auto-scale-lr']))


def test_auto_scale_lr_scales_both_optimizers(tmp_path):
    # The paper's lr 0.03 is for a total batch of 128; the tiny config's base is 4, and a batch
    # of 2 on one process must halve the encoder's and the discriminator's lr alike.
    cfg = train.merge_args(
        Config.fromfile(TINY),
        _args('--auto-scale-lr', '--work-dir', str(tmp_path), '--cfg-options',
              'train_dataloader.batch_size=2'))
    runner = train.build_runner(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    lrs = {k: [g['lr'] for g in w.param_groups] for k, w in runner.optim_wrapper.items()}
    assert set(lrs) == {'generator', 'discriminator'}
    for key, values in lrs.items():
        assert values == pytest.approx([0.03 * 2 / 4] * len(values)), key


def test_amp_on_cpu_is_a_clear_error():
    if torch.cuda.is_available():
        assert train.merge_args(Config.fromfile(TINY), _args('--amp')).optim_wrapper
        return
    with pytest.raises(SystemExit, match='--amp needs a GPU'):
        train.main([TINY, '--amp'])


# ---------------------------------------------------------------- real runs (subprocess)
def test_unknown_config_gives_clear_error(tmp_path):
    proc = _run([str(tmp_path / 'no_such_config.py')], timeout=120)
    assert proc.returncode != 0
    assert 'Config file not found' in proc.stderr and 'no_such_config.py' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_train_two_iters_then_resume_auto(tmp_path):
    work = tmp_path / 'work'
    proc = _run([TINY, '--work-dir', str(work), '--cfg-options', 'train_cfg.max_iters=2',
                 'default_hooks.checkpoint.interval=1'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / 'iter_2.pth').exists() and (work / 'iter_1.pth').exists()
    dumped = Config.fromfile(str(work / 'liftedcl_tiny_demo.py'))
    assert dumped.train_cfg.max_iters == 2  # --cfg-options reached the run
    log = proc.stdout + proc.stderr
    assert re.search(r'Iter\(train\) \[2/2\].*loss_inv', log)

    proc = _run([TINY, '--work-dir', str(work), '--resume', '--cfg-options',
                 'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=1'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower() and 'iter_2.pth' in log
    assert 'Iter(train) [3/3]' in log and 'Iter(train) [1/3]' not in log
    from liftedcl_mm.utils import load_checkpoint_safely
    ckpt = load_checkpoint_safely(work / 'iter_3.pth')
    assert ckpt['meta']['iter'] == 3
    assert int(ckpt['state_dict']['queue_inv.ptr']) != 0


# ---------------------------------------------------------------- distributed (2 CPU ranks)
PROBE = '''
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from liftedcl_mm.models.utils.momentum_encoder import MomentumEncoder
from liftedcl_mm.registry import HOOKS

SHUFFLES = []
_original = MomentumEncoder._shuffle


def _recording_shuffle(x):
    out, idx_unshuffle = _original(x)
    SHUFFLES.append(dict(x_in=x.detach().cpu().clone(), x_out=out.detach().cpu().clone(),
                         idx_unshuffle=None if idx_unshuffle is None
                         else idx_unshuffle.detach().cpu().clone()))
    return out, idx_unshuffle


MomentumEncoder._shuffle = staticmethod(_recording_shuffle)


@HOOKS.register_module()
class QueueProbeHook(Hook):
    """Dumps each rank's queues (before/after the first iteration) and shuffle-BN records."""

    def _model(self, runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 0:
            model = self._model(runner)
            self.before = {n: getattr(model, n).queue.detach().cpu().clone()
                           for n in ('queue_inv', 'queue_equiv')}
            SHUFFLES.clear()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == 0:
            model = self._model(runner)
            after = {n: getattr(model, n).queue.detach().cpu().clone()
                     for n in ('queue_inv', 'queue_equiv')}
            torch.save(dict(before=self.before, after=after, shuffles=list(SHUFFLES)),
                       osp.join(runner.work_dir, f'probe_rank{get_rank()}.pth'))
'''


@pytest.mark.slow
def test_dist_train_two_cpu_ranks_share_queue_and_shuffle_bn(tmp_path):
    (tmp_path / 'queue_probe.py').write_text(PROBE)
    cfg_path = tmp_path / 'tiny_probe.py'
    cfg_path.write_text(textwrap.dedent(f'''
        _base_ = ['{TINY}']
        custom_imports = dict(imports=['liftedcl_mm', 'queue_probe'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='QueueProbeHook')]
        randomness = dict(seed=0)
    '''))
    work = tmp_path / 'work'
    env = _env(str(tmp_path))
    env.update(PYTHON=PY, PORT=str(29500 + os.getpid() % 1000))
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), str(cfg_path), '2', '--work-dir',
         str(work), '--cfg-options', 'train_cfg.max_iters=2'],
        cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    assert (work / 'iter_2.pth').exists()
    ranks = [torch.load(work / f'probe_rank{r}.pth', weights_only=False) for r in range(2)]

    # queues: identical on both ranks after the iteration, and each received the keys of
    # the whole global batch (2 ranks x N), not only its own N
    n = ranks[0]['shuffles'][0]['x_in'].shape[0]
    for name in ('queue_inv', 'queue_equiv'):
        assert torch.equal(ranks[0]['before'][name], ranks[1]['before'][name])
        assert torch.equal(ranks[0]['after'][name], ranks[1]['after'][name])
        changed = (ranks[0]['after'][name] != ranks[0]['before'][name]).any(dim=1)
        assert int(changed.sum()) == 2 * n, (name, int(changed.sum()))

    # shuffle-BN: one permutation of the gathered batch, shared by both ranks, whose shards
    # mix images of both ranks
    s0, s1 = ranks[0]['shuffles'][0], ranks[1]['shuffles'][0]
    assert s0['idx_unshuffle'] is not None
    assert torch.equal(s0['idx_unshuffle'], s1['idx_unshuffle'])
    gathered = torch.cat([s0['x_in'], s1['x_in']])
    idx_shuffle = torch.argsort(s0['idx_unshuffle'])
    assert not torch.equal(idx_shuffle, torch.arange(2 * n))
    for rank, record in enumerate((s0, s1)):
        assert torch.equal(record['x_out'], gathered[idx_shuffle[rank * n:(rank + 1) * n]])
    owners = idx_shuffle // n  # which rank each shuffled image came from
    assert (owners[:n] == 1).any() and (owners[n:] == 0).any()


@pytest.mark.slow
def test_mim_train_runs_package_train_script(tmp_path):
    """``mim train liftedcl_mm CONFIG`` runs liftedcl_mm/.mim/tools/train.py.

    mim finds the package through ``get_installed_path``; it is pointed at the imported package
    (what a ``setup.py develop``/regular install gives), the rest is mim's own code path. It runs
    from a folder outside the repository with the package's copy of the config, so the shipped
    demo data must be found relative to the config, not to the working directory.
    """
    import liftedcl_mm
    pkg_root = osp.dirname(liftedcl_mm.__file__)
    assert osp.realpath(osp.join(pkg_root, '.mim', 'tools', 'train.py')) == osp.realpath(TRAIN)
    config = osp.join(pkg_root, '.mim', 'configs', 'liftedcl_tiny_demo.py')
    script = textwrap.dedent(f'''
        import importlib, sys
        mim_train = importlib.import_module('mim.commands.train')
        mim_train.get_installed_path = lambda package: {pkg_root!r}
        ok, msg = mim_train.train(
            'liftedcl_mm', {config!r}, gpus=0,
            other_args=('--work-dir', {str(tmp_path / "mim")!r},
                        '--cfg-options', 'train_cfg.max_iters=1'))
        print('MIM', ok, msg)
        sys.exit(0 if ok else 1)
    ''')
    env = _env()
    env['PATH'] = f'{osp.dirname(PY)}:{env.get("PATH", "")}'
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    proc = subprocess.run([PY, '-c', script], cwd=str(outside), capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'MIM True' in proc.stdout
    assert (tmp_path / 'mim' / 'iter_1.pth').exists()


@pytest.mark.slow
def test_mmpose_demo_finetune_then_test(tmp_path):
    """train.py and test.py on configs/mmpose/simplebaseline_tiny_demo.py (default_scope mmpose)
    from a backbone extracted from a real tiny LiftedCL checkpoint; CocoMetric prints AP."""
    pre = tmp_path / 'pre'
    proc = _run([TINY, '--work-dir', str(pre), '--cfg-options', 'train_cfg.max_iters=1'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    backbone = tmp_path / 'backbone.pth'
    conv = subprocess.run(
        [PY, osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py'),
         str(pre / 'iter_1.pth'), str(backbone)], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env=_env())
    assert conv.returncode == 0, conv.stderr[-2000:]
    demo = osp.join(ROOT, 'configs', 'mmpose', 'simplebaseline_tiny_demo.py')
    fine = tmp_path / 'fine'
    proc = _run([demo, '--work-dir', str(fine), '--cfg-options',
                 f'model.backbone.init_cfg.checkpoint={backbone}', 'train_cfg.max_epochs=1',
                 'train_cfg.val_interval=1'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f'load model from: {backbone}' in log
    assert 'missing keys' not in log and 'unexpected key' not in log
    assert (fine / 'epoch_1.pth').exists()
    test = subprocess.run(
        [PY, osp.join(ROOT, 'tools', 'test.py'), demo, str(fine / 'epoch_1.pth'), '--work-dir',
         str(tmp_path / 'test'), '--out', str(tmp_path / 'metrics.json')],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'coco/AP' in test.stdout + test.stderr
    import json
    metrics = json.load(open(tmp_path / 'metrics.json'))
    for key in ('coco/AP', 'pck0.05/PCK', 'pck0.2/PCK'):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics['pck0.05/PCK'] <= metrics['pck0.2/PCK']


def test_missing_pretrained_file_names_it_and_the_conversion(tmp_path, capsys):
    config = osp.join(ROOT, 'configs', 'liftedcl_r50_coco_mocov2-init.py')
    missing = Config.fromfile(config).model.backbone.init_cfg.checkpoint
    assert not osp.exists(osp.join(ROOT, missing))
    with pytest.raises(SystemExit) as exc:
        train.main([config, '--work-dir', str(tmp_path / 'work')])
    message = str(exc.value.code)
    assert 'model.backbone.init_cfg.checkpoint' in message
    assert missing in message
    assert f'tools/model_converters/extract_backbone.py DOWNLOADED_CHECKPOINT {missing}' \
        in message
    assert not (tmp_path / 'work').exists()  # refused before anything was built or written

    # Lists of init configs and MMPose configs are checked the same way; remote URLs are not.
    from liftedcl_mm.utils.launch import check_init_checkpoints
    cfg = Config(dict(model=dict(head=dict(init_cfg=[
        dict(type='Normal', std=0.01),
        dict(type='Pretrained', checkpoint=str(tmp_path / 'gone.pth'))]))))
    with pytest.raises(FileNotFoundError, match=r'model\.head\.init_cfg\[1\]\.checkpoint'):
        check_init_checkpoints(cfg)
    check_init_checkpoints(Config(dict(model=dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint='https://download.pytorch.org/models/x.pth'))))))


@pytest.mark.parametrize('config, key', [
    (TINY, 'train_cfg.max_iters'),
    (osp.join(ROOT, 'configs', 'liftedcl_r50_coco.py'), 'train_cfg.max_epochs'),
])
def test_cosine_follows_the_loop_length(tmp_path, config, key):
    """``--cfg-options train_cfg.max_iters=200`` must not leave the cosine at the old T_max."""
    from mmengine.optim.scheduler import ConstantLR, CosineAnnealingLR
    demo = osp.join(ROOT, 'data', 'demo', 'coco_human') + '/'
    cfg = train.merge_args(Config.fromfile(config), train.parse_args([
        config, '--work-dir', str(tmp_path), '--cfg-options', f'{key}=7',
        'model.prior.num_samples=8', f'train_dataloader.dataset.data_root={demo}',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']))
    runner = train.build_runner(cfg)
    assert runner.train_loop is not None  # built, so the schedulers see its length
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    schedulers = runner.build_param_scheduler(runner.param_schedulers)
    cosine, constant = schedulers['generator'][0], schedulers['discriminator'][0]
    assert isinstance(cosine, CosineAnnealingLR) and isinstance(constant, ConstantLR)
    assert cosine.T_max == 7 and cosine.end == 7 and constant.end == 7
