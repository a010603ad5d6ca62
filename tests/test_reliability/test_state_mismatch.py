"""Issue 13, items 4 and 5: a checkpoint that does not fit, a set smaller than a batch, a
Pretrained file that loads nothing, and a pre-training checkpoint given to tools/test.py are
errors that name the problem, not warnings followed by a wasted run."""
import os
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

import liftedcl_mm  # noqa: F401
from liftedcl_mm.testing.reliability import run_python
from liftedcl_mm.utils.state_check import StateMismatch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TEST = osp.join(ROOT, 'tools', 'test.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')
TINY_POSE = osp.join(ROOT, 'configs', 'mmpose', 'simplebaseline_tiny_demo.py')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp('state_mismatch') / 'work'
    proc = run_python([TRAIN, TINY, '--work-dir', str(work), '--cfg-options',
                       'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def _snapshot(folder):
    """Checkpoints and the last_checkpoint marker (logs and the config dump may be added)."""
    return {p: os.stat(osp.join(folder, p)).st_mtime_ns for p in os.listdir(folder)
            if p.endswith('.pth') or p == 'last_checkpoint'}


@pytest.mark.parametrize('option, tensor, key', [
    ('model.queue_len=32', 'queue_inv.queue', 'model.queue_len'),
    ('model.feat_dim=16', 'queue_equiv.queue', 'model.feat_dim'),
    ('model.backbone.base_channels=4', 'backbone.layer1.0.conv1.weight', 'model.backbone'),
])
def test_resume_with_changed_shapes_is_an_error(run, option, tensor, key):
    before = _snapshot(run)
    proc = run_python([TRAIN, TINY, '--work-dir', str(run), '--resume', 'auto',
                       '--cfg-options', 'train_cfg.max_iters=4', option])
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: cannot resume from') and 'iter_2.pth' in last, last
    assert tensor in last and key in last, last
    assert _snapshot(run) == before  # nothing pruned, nothing written


@pytest.mark.parametrize('loop', ['iter', 'epoch'])
def test_dataset_smaller_than_a_batch_is_an_error(tmp_path, loop):
    options = ['train_dataloader.batch_size=100000']
    if loop == 'epoch':
        options += ['train_cfg._delete_=True', 'train_cfg.type=EpochBasedTrainLoop',
                    'train_cfg.max_epochs=3']
    proc = run_python([TRAIN, TINY, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                       *options])
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert 'fewer than one batch of 100000' in last and 'drop_last' in last, last
    assert 'StopIteration' not in proc.stderr
    assert not list((tmp_path / 'w').glob('*.pth'))


def test_pretrained_without_prefix_on_a_full_checkpoint_is_an_error(run):
    from mmpose.registry import MODELS as MMPOSE_MODELS
    init_default_scope('mmpose')
    full = str(run / 'iter_2.pth')
    backbone = MMPOSE_MODELS.build(dict(
        type='ResNet', depth=18, base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=full)))
    with pytest.raises(StateMismatch) as info:
        backbone.init_weights()
    message = str(info.value)
    assert full in message and "prefix='backbone.'" in message
    assert 'extract_backbone.py' in message
    # the fix named in the message works and loads the query encoder
    good = MMPOSE_MODELS.build(dict(
        type='ResNet', depth=18, base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=full, prefix='backbone.')))
    good.init_weights()
    state = torch.load(full, weights_only=True)['state_dict']
    assert torch.equal(good.conv1.weight, state['backbone.conv1.weight'])
    # and the limit can be lifted for a deliberate partial load
    partial = MMPOSE_MODELS.build(dict(
        type='ResNet', depth=18, base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=full, max_missing=None)))
    partial.init_weights()


def test_test_tool_refuses_a_pretraining_checkpoint(run, tmp_path):
    proc = run_python([TEST, TINY_POSE, str(run / 'iter_2.pth'), '--work-dir',
                       str(tmp_path / 'test')])
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert 'head' in last and 'fine-tuned first' in last, last
    assert 'coco/AP: ' not in proc.stdout  # no evaluation ran
