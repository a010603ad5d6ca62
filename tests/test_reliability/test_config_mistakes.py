"""Config mistakes fail at build time (or, for what needs the batch, before the first
optimizer step) with a message naming the problem, and leave the work dir as it was."""
import hashlib
import importlib.util
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from liftedcl_mm.testing.reliability import run_python

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')



def _train(args, timeout=240):
    return run_python([TRAIN] + args, timeout)


def _snapshot(work):
    """{relative path: sha256} of every file in ``work``."""
    out = {}
    for dirpath, _, files in os.walk(work):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, work)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work dir holding a real run: iter_1.pth and last_checkpoint."""
    work = tmp_path_factory.mktemp('trained') / 'work'
    proc = _train([TINY, '--work-dir', str(work), '--cfg-options', 'train_cfg.max_iters=1',
                   'default_hooks.checkpoint.interval=1'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / 'iter_1.pth').exists()
    return work


@pytest.fixture
def work(trained, tmp_path):
    dst = tmp_path / 'work'
    shutil.copytree(trained, dst)
    return dst


def _bad_prior(tmp_path):
    path = tmp_path / 'prior_16_joints.npy'
    rng = np.random.default_rng(0)
    np.save(path, (rng.standard_normal((256, 16, 3)) / 7).astype(np.float32))
    return str(path)


# (name, --cfg-options, text the last line of the error must contain)
CASES = [
    ('unknown key', lambda tmp: ['model.queue_lenght=32'],
     ["LiftedCL", "unexpected keyword argument 'queue_lenght'"]),
    # resuming a run whose queues had another length: refused before the batch check
    ('queue of another length than the checkpoint', lambda tmp: ['model.queue_len=2'],
     ['cannot resume from', 'queue_inv.queue', 'model.queue_len']),
    ('every loss weight 0', lambda tmp: ['model.loss_inv.loss_weight=0',
                                         'model.loss_equiv.loss_weight=0',
                                         'model.loss_adv.loss_weight=0'],
     ['LiftedCL needs at least one of loss_inv, loss_equiv, loss_adv with loss_weight > 0']),
    ('prior with 16 joints', lambda tmp: [f'model.prior.cache_file={_bad_prior(tmp)}'],
     ['prior_16_joints.npy has shape (256, 16, 3), expected (256, 17, 3)']),
]


@pytest.mark.parametrize('name,options,needles', CASES, ids=[c[0] for c in CASES])
def test_mistake_fails_early_and_keeps_the_work_dir(work, tmp_path, name, options, needles):
    before = _snapshot(work)
    proc = _train([TINY, '--work-dir', str(work), '--resume', 'auto', '--cfg-options',
                   'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=1',
                   *options(tmp_path)])
    assert proc.returncode != 0
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    for needle in needles:
        assert needle in last, proc.stderr[-3000:]
    # no iteration ran, nothing was saved, every file that was there kept its bytes
    log = proc.stdout + proc.stderr
    assert 'Iter(train) [2/3]' not in log and 'Saving checkpoint' not in log
    after = _snapshot(work)
    # MMEngine re-dumps the config at the top of the work dir once the model is built (the
    # queue check needs a batch); the earlier run's copy stays in its vis_data/config.py.
    dumped = 'liftedcl_tiny_demo.py'
    assert {k: v for k, v in after.items() if k in before and k != dumped} == {
        k: v for k, v in before.items() if k != dumped}
    assert any(k.endswith('vis_data/config.py') for k in before)
    assert not [k for k in after if k not in before and k.endswith('.pth')]


# The same kind of mistakes through tools/train.py's main in this process (fast).
def _load_train():
    spec = importlib.util.spec_from_file_location('train_tool_reliability', TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IN_PROCESS_CASES = [
    (['model.nonfinite=ignore'], ValueError, "nonfinite must be 'raise' or 'skip'"),
    (['model.loss_equiv.loss_weight=-0.5'], ValueError, 'loss_equiv.loss_weight must be'),
    (['model.momentum=1.5'], ValueError, 'model.momentum must be a number in (0, 1)'),
    (['model.align_size=0'], ValueError, 'model.align_size must be an integer >= 1'),
    (['model.queue_len=0'], ValueError, 'model.queue_len must be an integer >= 1'),
    (['model.queue_len=abc'], ValueError, "model.queue_len must be an integer >= 1, got 'abc'"),
    (['model.loss_adv.loss_weight=x'], ValueError, "model.loss_adv.loss_weight must be a finite"),
    (['model.queue_len=2'], ValueError,
     'queue_len (2) must be >= the global batch size (4 x 1 ranks = 4)'),
    (['model.lifting_head.num_joints=16'], ValueError,
     'prior skeletons have 17 joints but lifting_head.num_joints is 16'),
    (['model.prior=None'], ValueError, '`prior` is not configured'),
    (['model.equiv_neck=None'], ValueError, '`equiv_neck` is not configured'),
    (['model.discriminator.num_joints=16'], ValueError, '[0, 16)'),
    (['model.loss_inv.type=NoSuchLoss'], KeyError, 'NoSuchLoss'),
]


@pytest.mark.parametrize('options,exc,needle', IN_PROCESS_CASES,
                         ids=[c[0][0] for c in IN_PROCESS_CASES])
def test_more_mistakes_in_process(tmp_path, options, exc, needle):
    train = _load_train()
    work = tmp_path / 'work'
    with pytest.raises(exc) as info:
        train.main([TINY, '--work-dir', str(work), '--cfg-options', *options])
    assert needle in str(info.value)
    assert not list(work.glob('*.pth'))


def test_count_of_config_mistakes():
    total = len(CASES) + len(IN_PROCESS_CASES)
    print(f'\nconfig mistakes tried: {total}, all rejected before the first optimizer step')
    assert total >= 14
