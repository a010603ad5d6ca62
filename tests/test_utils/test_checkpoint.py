import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from liftedcl_mm.utils import (UnsafeCheckpointError, find_unsafe_globals,
                               load_checkpoint_safely, register_safe_globals)


class _RunsShellOnLoad:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _GetattrGadget:
    """Tries to reach ``numpy.ndarray.tofile`` through ``builtins.getattr``."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


def test_malicious_checkpoint_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(2)}, 'x': _RunsShellOnLoad(marker)}, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_safely(path)
    assert not marker.exists(), 'the pickle payload was executed'
    msg = str(info.value)
    assert str(path) in msg
    # os.system pickles as posix.system on Linux
    assert 'system' in msg and 'arbitrary code' in msg
    assert any('system' in g for g in info.value.unsafe_globals)
    assert isinstance(info.value, ValueError)
    assert any('system' in g for g in find_unsafe_globals(str(path)))


def test_restricted_getattr_blocks_other_attributes(tmp_path):
    path = tmp_path / 'gadget.pth'
    torch.save({'x': _GetattrGadget()}, path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_safely(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_safely(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='directory'):
        load_checkpoint_safely(tmp_path)
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'this is not a checkpoint at all')
    with pytest.raises(ValueError, match='not a valid torch checkpoint') as info:
        load_checkpoint_safely(bad)
    assert not isinstance(info.value, UnsafeCheckpointError)
    # a truncated real checkpoint
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.arange(1000.)}, good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match='truncated.pth'):
        load_checkpoint_safely(truncated)


def test_plain_tensor_and_numpy_checkpoint(tmp_path):
    path = tmp_path / 'ok.pth'
    payload = {
        'state_dict': {'w': torch.arange(6.).reshape(2, 3)},
        'meta': {'arr': np.arange(4, dtype=np.float32), 'scalar': np.float64(2.5),
                 'ints': np.array([1, 2], dtype=np.int64)}}
    torch.save(payload, path)
    out = load_checkpoint_safely(path)
    assert torch.equal(out['state_dict']['w'], payload['state_dict']['w'])
    np.testing.assert_array_equal(out['meta']['arr'], payload['meta']['arr'])
    assert out['meta']['scalar'] == 2.5 and out['meta']['arr'].dtype == np.float32
    assert find_unsafe_globals(str(path)) == []


class _TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, mode='loss'):
        return dict(loss=self.linear(x).pow(2).mean())


class _TinyData(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(x=torch.full((2, ), float(idx)))


def _runner(work_dir, max_iters, resume=False, load_from=None):
    return Runner(
        model=_TinyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_TinyData(), sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        resume=resume, load_from=load_from, experiment_name=f'exp_{max_iters}_{resume}')


def test_runner_checkpoint_resumes_after_registration(tmp_path):
    register_safe_globals()
    runner = _runner(tmp_path, max_iters=2)
    runner.train()
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.exists()
    # what MMEngine really writes needs our allow-list (numpy + HistoryBuffer + getattr) ...
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        raw = torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt))
        with pytest.raises(Exception, match='numpy|HistoryBuffer|getattr'):
            torch.load(ckpt)  # plain MMEngine resume on torch >= 2.6 fails like this
    finally:
        torch.serialization.add_safe_globals(saved)
    assert 'numpy.ndarray' in raw and any('HistoryBuffer' in g for g in raw)
    # ... and with it nothing is left unsafe
    assert find_unsafe_globals(str(ckpt)) == []
    weights = {k: v.clone() for k, v in runner.model.state_dict().items()}

    resumed = _runner(tmp_path, max_iters=3, resume=True)
    resumed.load_or_resume()  # resume=True + load_from=None picks the last checkpoint
    assert resumed.iter == 2
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    momentum = resumed.optim_wrapper.optimizer.state_dict()['state']
    assert len(momentum) == 2  # SGD momentum buffers of weight and bias restored
    hub_loss = resumed.message_hub.get_scalar('train/loss')
    assert len(hub_loss.data[0]) == 2  # HistoryBuffer restored with its numpy history
    assert osp.exists(tmp_path / 'last_checkpoint')


def test_import_liftedcl_mm_registers_safe_globals(tmp_path):
    """A fresh interpreter: ``import liftedcl_mm`` alone makes plain ``torch.load`` (what
    MMEngine's resume and MMPose's ``init_cfg=Pretrained`` call) read MMEngine checkpoints."""
    import subprocess
    import sys
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'arr': np.arange(3), 'f': np.float64(1.5)},
                'state_dict': {'w': torch.ones(2)}}, path)
    code = ('import torch; import liftedcl_mm; '
            f'ck = torch.load({str(path)!r}); '
            'print(ck["meta"]["f"] + ck["state_dict"]["w"].sum().item())')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('3.5')
