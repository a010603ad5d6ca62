"""Exact resume through tools/train.py: 4 iterations straight == 2 iterations, abrupt stop,
``--resume``, 2 more iterations, bit for bit (model, key encoder, discriminator, queues,
optimizers, schedulers, message hub, and the data each iteration saw)."""
import json
import os.path as osp
import textwrap

import numpy as np
import pytest
import torch

from liftedcl_mm.testing.reliability import checkpoint_differences, flatten_state, run_python
from liftedcl_mm.utils import load_checkpoint_safely

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')



def _train(args, timeout=240):
    return run_python([TRAIN] + args, timeout)


def _write_config(path, extra_hooks=''):
    # Both runs have max_iters=4 (the interrupted one is stopped by a hook), so they follow the
    # same lr curve: the cosine's T_max follows the loop length.
    path.write_text(textwrap.dedent(f'''
        _base_ = ['{TINY}']
        custom_imports = dict(imports=['liftedcl_mm', 'liftedcl_mm.testing.reliability'],
                              allow_failed_imports=False)
        randomness = dict(seed=0, deterministic=True)
        train_cfg = dict(max_iters=4)
        train_dataloader = dict(num_workers=0)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1))
        custom_hooks = [dict(type='BatchRecorderHook'){extra_hooks}]
    '''))
    return str(path)


def _records(work):
    with open(work / 'batches.jsonl') as f:
        return {r['iter']: r for r in map(json.loads, f)}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('exact_resume')
    cfg = _write_config(tmp / 'tiny_resume.py')
    cfg_stop = _write_config(tmp / 'tiny_stop.py',
                             ", dict(type='ExitAfterIterHook', exit_after=2)")
    straight, split = tmp / 'straight', tmp / 'split'
    a = _train([cfg, '--work-dir', str(straight)])
    assert a.returncode == 0, a.stderr[-3000:]
    b1 = _train([cfg_stop, '--work-dir', str(split)])
    # the stop hook ends the process abruptly right after iteration 2 is saved
    assert b1.returncode == 3, b1.stderr[-3000:]
    assert (split / 'iter_2.pth').exists() and not (split / 'iter_3.pth').exists()
    b2 = _train([cfg, '--work-dir', str(split), '--resume', 'auto'])
    assert b2.returncode == 0, b2.stderr[-3000:]
    return dict(straight=straight, split=split, resume_log=b2.stdout + b2.stderr)


def test_resume_started_from_iteration_2(runs):
    log = runs['resume_log']
    assert 'resumed' in log.lower() and 'iter_2.pth' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log


@pytest.mark.parametrize('step', [2, 3, 4])
def test_checkpoints_bit_identical(runs, step):
    ref = load_checkpoint_safely(runs['straight'] / f'iter_{step}.pth')
    got = load_checkpoint_safely(runs['split'] / f'iter_{step}.pth')
    assert checkpoint_differences(ref, got) == []
    sd = got['state_dict']
    # the comparison covered every part the issue names
    for key in ('backbone.conv1.weight', 'backbone.bn1.running_mean', 'neck.mlp.0.weight',
                'equiv_neck.mlp.0.weight', 'encoder_k.module.0.conv1.weight',
                'encoder_k.module.0.bn1.running_mean', 'encoder_k.steps',
                'discriminator.kcs_branch.0.weight', 'discriminator.fuse.0.weight',
                'lifting_head.fc_in.weight', 'queue_inv.queue', 'queue_inv.ptr',
                'queue_equiv.queue', 'queue_equiv.ptr', 'num_steps', 'nonfinite_skipped'):
        assert key in sd, key
    assert int(sd['num_steps']) == step and int(sd['queue_inv.ptr']) == (4 * step) % 64
    assert set(got['optimizer']) == {'generator', 'discriminator'}
    assert len(got['optimizer']['generator']['state']) > 0
    assert len(got['optimizer']['discriminator']['state']) > 0
    # the schedule ends with the loop (end = max_iters = 4): MMEngine stops counting at end - 1
    assert got['param_schedulers']['generator'][0]['last_step'] == min(step, 3)
    # the message hub's iter is the 0-based index of the iteration that saved
    assert got['message_hub']['runtime_info']['iter'] == step - 1 and got['meta']['iter'] == step


def test_training_changed_the_state_between_checkpoints(runs):
    # guards against a comparison that passes because nothing moves
    two = load_checkpoint_safely(runs['straight'] / 'iter_2.pth')
    four = load_checkpoint_safely(runs['straight'] / 'iter_4.pth')
    diffs = checkpoint_differences(two, four)
    for part in ('state_dict/backbone.', 'state_dict/encoder_k.', 'state_dict/discriminator.',
                 'state_dict/queue_inv.queue', 'state_dict/queue_equiv.ptr',
                 'optimizer/generator/state', 'optimizer/discriminator/state',
                 'param_schedulers/generator'):
        assert any(d.startswith(part) for d in diffs), part


def test_same_data_and_losses_every_iteration(runs):
    ref, got = _records(runs['straight']), _records(runs['split'])
    assert sorted(ref) == [0, 1, 2, 3] and sorted(got) == [0, 1, 2, 3]
    for it in range(4):
        # rng: the global torch/numpy/python RNG states before the iteration
        for key in ('img_paths', 'inputs', 'geometry', 'losses', 'rng'):
            assert ref[it][key] == got[it][key], (it, key)
        assert all(np.isfinite(float.fromhex(v)) for v in got[it]['losses'].values())
    # the batches really differ from one iteration to the next (random views, sampler)
    assert ref[2]['inputs'] != ref[3]['inputs'] and ref[2]['img_paths'] != ref[3]['img_paths']
    assert set(ref[3]['losses']) >= {'loss_inv', 'loss_equiv', 'loss_adv_g', 'loss_d_real'}


def test_comparison_detects_a_single_flipped_bit(runs):
    ckpt = load_checkpoint_safely(runs['straight'] / 'iter_4.pth')
    other = load_checkpoint_safely(runs['straight'] / 'iter_4.pth')
    queue = other['state_dict']['queue_equiv.queue']
    queue.view(torch.int32)[0, 0] ^= 1  # the lowest mantissa bit of one float
    other['optimizer']['discriminator']['state'][0]['momentum_buffer'].view(-1)[0] += 1e-7
    diffs = checkpoint_differences(ckpt, other)
    assert 'state_dict/queue_equiv.queue' in diffs
    assert 'optimizer/discriminator/state/0/momentum_buffer' in diffs
    assert len(flatten_state(ckpt['state_dict'])) == len(ckpt['state_dict'])
