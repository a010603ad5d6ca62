import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import liftedcl_mm  # noqa: F401  (registers AtomicCheckpointHook)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


def toy_dataset():
    return [dict(inputs=torch.ones(2) * i) for i in range(8)]


def build_runner(work_dir, max_keep_ckpts=2, max_iters=4):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=toy_dataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            checkpoint=dict(
                type='liftedcl_mm.AtomicCheckpointHook',
                interval=1,
                by_epoch=False,
                max_keep_ckpts=max_keep_ckpts)),
        default_scope='liftedcl_mm',
        experiment_name=f'atomic_{osp.basename(str(work_dir))}')


def read_last(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def test_saves_complete_checkpoints_and_keeps_the_newest(tmp_path):
    runner = build_runner(tmp_path, max_keep_ckpts=2)
    runner.train()
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    assert names == ['iter_3.pth', 'iter_4.pth']
    assert read_last(tmp_path) == osp.join(str(tmp_path), 'iter_4.pth')
    assert not [n for n in os.listdir(tmp_path) if '.tmp' in n]
    ckpt = torch.load(read_last(tmp_path), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 4
    assert torch.equal(ckpt['state_dict']['linear.weight'], runner.model.linear.weight.detach())


def test_a_crash_while_saving_keeps_the_last_complete_checkpoint(tmp_path, monkeypatch):
    runner = build_runner(tmp_path, max_keep_ckpts=1, max_iters=3)
    real_save = torch.save
    calls = {'n': 0}

    def crashing_save(obj, f, *args, **kwargs):
        calls['n'] += 1
        if calls['n'] == 2:  # the second checkpoint dies half-written
            f.write(b'partial')
            raise KeyboardInterrupt('killed while saving')
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', crashing_save)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    # the first checkpoint survives although max_keep_ckpts=1, and is still referenced
    assert read_last(tmp_path) == osp.join(str(tmp_path), 'iter_1.pth')
    assert sorted(n for n in os.listdir(tmp_path) if 'iter_' in n) == ['iter_1.pth']
    ckpt = torch.load(osp.join(tmp_path, 'iter_1.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 1


def test_refuses_to_save_nonfinite_weights(tmp_path):
    runner = build_runner(tmp_path, max_keep_ckpts=2, max_iters=2)
    hook = [h for h in runner.hooks if type(h).__name__ == 'AtomicCheckpointHook'][0]
    runner.train()
    assert read_last(tmp_path).endswith('iter_2.pth')
    with torch.no_grad():
        runner.model.linear.weight[0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='linear.weight'):
        hook._save_checkpoint_with_step(runner, 3, dict(iter=3, epoch=0))
    assert not osp.exists(osp.join(tmp_path, 'iter_3.pth'))
    assert read_last(tmp_path).endswith('iter_2.pth')
