"""Real SIGKILLs of tools/train.py at random moments (in the middle of checkpoint saves
included), each followed by ``--resume auto``: the run finishes with exactly the state of an
uninterrupted run."""
import glob
import json
import math
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from liftedcl_mm.testing.reliability import checkpoint_differences, subprocess_env
from liftedcl_mm.utils import load_checkpoint_safely

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')
MAX_ITERS = 20  # the cosine schedule's T_max follows it
# How each cycle picks its moment (seeded): kill while a checkpoint's temp file exists, after a
# random delay once the process has made progress, or at a random moment of the start-up
# (config, model build, checkpoint loading).
PLAN = ['in_save', 'random', 'in_save', 'startup', 'random', 'in_save', 'random']



def _write_config(path):
    path.write_text(textwrap.dedent(f'''
        _base_ = ['{TINY}']
        custom_imports = dict(imports=['liftedcl_mm', 'liftedcl_mm.testing.reliability'],
                              allow_failed_imports=False)
        randomness = dict(seed=0, deterministic=True)
        train_cfg = dict(max_iters={MAX_ITERS})
        train_dataloader = dict(num_workers=0)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
        custom_hooks = [dict(type='BatchRecorderHook')]
    '''))
    return str(path)


def _start(cfg, work, log_path, resume=True):
    args = [sys.executable, TRAIN, cfg, '--work-dir', str(work)]
    if resume:
        args += ['--resume', 'auto']
    log = open(log_path, 'w')
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=subprocess_env())
    proc.log_file = log
    return proc


def _last(work):
    try:
        with open(osp.join(work, 'last_checkpoint')) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _temp_files(work, pid='*'):
    return glob.glob(osp.join(work, f'.iter_*.tmp{pid}'))


def _wait_progress(proc, work, before, timeout=120):
    """Until ``last_checkpoint`` changes (a new checkpoint is complete) or ``proc`` ends."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if _last(work) != before:
            return True
        time.sleep(0.005)
    return False


def _kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.log_file.close()


def _check_last_checkpoint(work):
    """``last_checkpoint`` names a complete, safely loadable, finite checkpoint."""
    text = _last(work)
    if text is None:
        return 0
    path = text.strip()
    assert path and osp.isfile(path), f'last_checkpoint -> missing file {path!r}'
    ckpt = load_checkpoint_safely(path)
    step = int(osp.basename(path)[len('iter_'):-len('.pth')])
    assert ckpt['meta']['iter'] == step
    for name, value in ckpt['state_dict'].items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), name
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(ckpt)
    return step


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    from liftedcl_mm.engine.hooks.atomic_checkpoint_hook import remove_stale_temp_files
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    live = os.getppid()
    names = {f'.iter_7.pth.tmp{dead.pid}': False, f'.last_checkpoint.tmp{dead.pid}': False,
             f'.iter_8.pth.tmp{live}': True, f'.iter_8.pth.tmp{os.getpid()}': True,
             'iter_6.pth': True, f'.notes.txt.tmp{dead.pid}': True, 'last_checkpoint': True}
    for name in names:
        (tmp_path / name).write_bytes(b'x')
    removed = remove_stale_temp_files(str(tmp_path))
    assert sorted(osp.basename(p) for p in removed) == sorted(
        n for n, kept in names.items() if not kept)
    assert sorted(os.listdir(tmp_path)) == sorted(n for n, kept in names.items() if kept)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_auto(tmp_path):
    cfg = _write_config(tmp_path / 'tiny_kill.py')
    ref_work, work = tmp_path / 'reference', tmp_path / 'killed'
    reference = _start(cfg, ref_work, tmp_path / 'reference.log', resume=False)

    rng = random.Random(2024)
    cycles, kills_in_save, kills_at_startup, saved_steps = 0, 0, 0, []
    for cycle, mode in enumerate(PLAN):
        before = _last(work)
        proc = _start(cfg, work, tmp_path / f'cycle{cycle}.log')
        hit_save = False
        if mode == 'startup':
            time.sleep(rng.uniform(1.0, 6.0))
        elif mode == 'random':
            # a random moment of the iteration after the next checkpoint, whatever the speed
            _wait_progress(proc, work, before)
            start, first = time.time(), _last(work)
            _wait_progress(proc, work, first)
            time.sleep(rng.uniform(0.0, time.time() - start))
        else:  # in_save: as soon as a checkpoint's temp file shows up
            _wait_progress(proc, work, before)
            end = time.time() + 60
            while proc.poll() is None and time.time() < end:
                if _temp_files(work, proc.pid):
                    proc.send_signal(signal.SIGKILL)
                    break
        finished = proc.poll() == 0
        if not finished:
            _kill(proc)
            assert proc.returncode == -signal.SIGKILL
            cycles += 1
            # the temp file outlived the process: it died in the middle of a save
            hit_save = bool(_temp_files(work, proc.pid)) and mode == 'in_save'
            kills_in_save += hit_save
            kills_at_startup += mode == 'startup'
        else:
            proc.log_file.close()
        step = _check_last_checkpoint(work)
        saved_steps.append(step)
        if hit_save:
            # the interrupted save was of a later iteration than the one resume will read
            interrupted = [int(osp.basename(t)[len('.iter_'):].split('.pth')[0])
                           for t in _temp_files(work, proc.pid)]
            assert step < max(interrupted), (step, interrupted)
        if finished:
            break

    # the last run is not killed: it resumes and finishes
    final = _start(cfg, work, tmp_path / 'final.log')
    assert final.wait(timeout=240) == 0, open(tmp_path / 'final.log').read()[-3000:]
    final.log_file.close()
    assert reference.wait(timeout=240) == 0, open(tmp_path / 'reference.log').read()[-3000:]
    reference.log_file.close()

    assert kills_in_save >= 1, 'no kill landed inside a checkpoint save'
    # the partial files of the interrupted saves were deleted by the next start
    assert _temp_files(work) == [] and not glob.glob(osp.join(work, '.last_checkpoint.tmp*'))
    logs = ''.join(open(p).read() for p in glob.glob(str(tmp_path / '*.log')))
    assert logs.count('left by an interrupted save') >= kills_in_save
    assert cycles >= 5
    assert saved_steps == sorted(saved_steps), saved_steps  # never went back
    assert 'resumed' in open(tmp_path / 'final.log').read().lower()

    ref = load_checkpoint_safely(ref_work / f'iter_{MAX_ITERS}.pth')
    got = load_checkpoint_safely(work / f'iter_{MAX_ITERS}.pth')
    diffs = checkpoint_differences(ref, got)
    # every iteration (re-executed ones included) saw the same data and gave the same losses
    with open(ref_work / 'batches.jsonl') as f:
        ref_records = {r['iter']: r for r in map(json.loads, f)}
    with open(work / 'batches.jsonl') as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert {r['iter'] for r in records} == set(range(MAX_ITERS))
    mismatched = [r['iter'] for r in records
                  if any(r[k] != ref_records[r['iter']][k]
                         for k in ('img_paths', 'inputs', 'geometry', 'losses'))]
    print(f'\nkill/resume cycles survived: {cycles} ({kills_in_save} inside a checkpoint save, '
          f'{kills_at_startup} during start-up), iterations run: {len(records)} for '
          f'{MAX_ITERS}, final state identical: {not diffs}')
    assert mismatched == []
    assert all(math.isfinite(float.fromhex(v)) for r in records for v in r['losses'].values())
    assert diffs == []
