"""Helpers of the LiftedCL algorithm: prior bank, view geometry, non-finite policy, key encoder."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmpretrain.structures import DataSample

from liftedcl_mm.models.utils import (BufferSnapshot, MomentumEncoder, NonFiniteGuard, PriorBank,
                                      nonfinite_terms, view_geometry)
from liftedcl_mm.models.utils import prior_bank as prior_bank_module

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- PriorBank
def _bank(num=20, seed=7):
    gen = torch.Generator().manual_seed(0)
    return PriorBank(torch.randn(num, 17, 3, generator=gen), seed=seed)


def test_prior_draw_is_a_pure_function_of_seed_step_and_rank(monkeypatch):
    bank = _bank()
    a = bank.draw(8, step=3)
    assert a.shape == (8, 17, 3) and a.dtype == torch.float32
    torch.testing.assert_close(bank.draw(8, step=3), a)  # no hidden RNG state
    # The formula is part of the checkpoint contract (a resumed run draws the same).
    gen = torch.Generator().manual_seed((7 * 1_000_003 + 3) * 1009 + 0)
    torch.testing.assert_close(a, bank.skeletons[torch.randint(20, (8, ), generator=gen)])
    assert not torch.equal(bank.draw(8, step=4), a)
    assert not torch.equal(_bank(seed=8).draw(8, step=3), a)
    monkeypatch.setattr(prior_bank_module, 'get_rank', lambda: 1)
    assert not torch.equal(bank.draw(8, step=3), a)  # other ranks draw other skeletons
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    bank.draw(8, step=3)
    assert torch.equal(torch.rand(1), before)  # the global RNG is untouched


def test_prior_bank_is_not_checkpointed_and_follows_the_module():
    bank = _bank()
    assert bank.state_dict() == {}
    holder = nn.Module()
    holder.bank = bank
    holder.to(torch.float64)
    assert bank.skeletons.dtype == torch.float64
    assert bank.draw(2, step=0, device=torch.device('cpu')).device.type == 'cpu'


def test_prior_bank_build_and_errors():
    bank = PriorBank.build(dict(type='SkeletonPriorDataset', num_samples=16, seed=5),
                           num_joints=17)
    assert bank.skeletons.shape == (16, 17, 3) and bank.seed == 5

    class Dataset:
        skeletons = np.zeros((4, 17, 3))

    assert PriorBank.build(Dataset()).seed == 0
    with pytest.raises(ValueError, match='has no `skeletons`'):
        PriorBank.build(object())
    with pytest.raises(ValueError, match=r'\(P, J, 3\)'):
        PriorBank(np.zeros((4, 17, 2)))
    with pytest.raises(ValueError, match='prior skeletons have 17 joints but head.J is 16'):
        PriorBank.build(Dataset(), num_joints=16, expected_by='head.J')


# ----------------------------------------------------------------------------- view geometry
def _sample(bboxes, flips):
    sample = DataSample()
    sample.set_metainfo(dict(view_bboxes=np.asarray(bboxes, np.float32),
                             view_flips=np.asarray(flips)))
    return sample


def test_view_geometry_stacks_boxes_and_flips():
    samples = [_sample([[0, 0, 4, 4], [1, 1, 5, 5]], [False, True]),
               _sample([[2, 0, 6, 8], [0, 0, 3, 3]], [True, False])]
    bboxes, flips = view_geometry(samples, torch.device('cpu'))
    assert bboxes.shape == (2, 2, 4) and bboxes.dtype == torch.float32
    assert flips.dtype == torch.bool and flips.tolist() == [[False, True], [True, False]]
    assert bboxes[1, 0].tolist() == [2, 0, 6, 8]


def test_view_geometry_errors():
    with pytest.raises(KeyError, match='PackViewsWithGeometry'):
        view_geometry([DataSample()], torch.device('cpu'))
    with pytest.raises(ValueError, match='V>=2'):
        view_geometry([_sample([[0, 0, 4, 4]], [False])], torch.device('cpu'))
    with pytest.raises(ValueError, match='differ in shape'):
        view_geometry([_sample([[0, 0, 4, 4]] * 2, [False] * 2),
                       _sample([[0, 0, 4, 4]] * 3, [False] * 3)], torch.device('cpu'))
    with pytest.raises(ValueError, match='view_flips'):
        view_geometry([_sample([[0, 0, 4, 4]] * 2, [False] * 3)], torch.device('cpu'))


# ----------------------------------------------------------------------------- non-finite
def test_nonfinite_terms_names_the_bad_ones_in_order():
    losses = dict(a=torch.tensor(1.0), b=torch.tensor(float('nan')),
                  c=torch.tensor([1.0, float('inf')]), d=torch.tensor(2.0, requires_grad=True))
    assert nonfinite_terms(losses) == ['b', 'c']
    assert nonfinite_terms(dict(a=torch.tensor(0.0))) == []
    assert nonfinite_terms({}) == []


def test_buffer_snapshot_undoes_a_training_forward():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    net = nn.Sequential(nn.Linear(2, 3), bn)
    snapshot = BufferSnapshot([net, None])
    mean, count = bn.running_mean, bn.num_batches_tracked
    net(torch.randn(5, 2) + 3)
    assert not torch.equal(bn.running_mean, torch.zeros(3)) and int(count) == 1
    snapshot.restore()
    assert bn.running_mean is mean  # restored in place: optimisers/EMA keep their references
    assert torch.equal(bn.running_mean, torch.zeros(3)) and int(bn.num_batches_tracked) == 0


def test_nonfinite_guard_raises_or_reports():
    bad = dict(loss_x=torch.tensor(1.0), loss_y=torch.tensor(float('nan')))
    with pytest.raises(FloatingPointError, match=r'M: non-finite loss_y at iteration 4'):
        NonFiniteGuard('raise', owner='M').check(bad, step=4)
    assert NonFiniteGuard('raise').snapshot([nn.BatchNorm1d(2)]) is None
    skip = NonFiniteGuard('skip')
    assert skip.check(bad, step=4) == ['loss_y']
    assert skip.check(dict(loss_x=torch.tensor(1.0)), step=5) == []
    assert isinstance(skip.snapshot([nn.BatchNorm1d(2)]), BufferSnapshot)
    with pytest.raises(ValueError, match="'raise' or 'skip'"):
        NonFiniteGuard('ignore')


def _nonfinite_on_rank(rank, world_size, init_file, out_dir):
    import torch.distributed as torch_dist
    torch_dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                                  world_size=world_size)
    try:
        # only rank 1 sees a NaN; both must decide the same way
        value = float('nan') if rank == 1 else 1.0
        names = nonfinite_terms(dict(loss_a=torch.tensor(1.0), loss_b=torch.tensor(value)))
        torch.save(names, f'{out_dir}/rank{rank}.pth')
    finally:
        torch_dist.destroy_process_group()


def test_nonfinite_terms_agree_across_ranks(tmp_path):
    import torch.multiprocessing as mp
    mp.start_processes(_nonfinite_on_rank, args=(2, str(tmp_path / 'init'), str(tmp_path)),
                       nprocs=2, start_method='fork')
    for rank in range(2):
        assert torch.load(tmp_path / f'rank{rank}.pth') == ['loss_b']


# ----------------------------------------------------------------------------- key encoder
class _Head(nn.Module):

    def __init__(self, scale):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.scale = scale

    def forward(self, feats):
        return (self.scale * self.fc(feats), )


def _query():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), _Head(1.0), _Head(2.0))


def test_momentum_encoder_starts_as_a_copy_then_averages():
    query = _query()
    key = MomentumEncoder(query, momentum=0.25)
    assert set(key.state_dict()) == {'steps'} | {f'module.{k}' for k in query.state_dict()}
    with torch.no_grad():
        query[0].weight.mul_(3.0)  # e.g. pre-trained weights loaded after construction
    key.start(query)
    torch.testing.assert_close(key.module[0].weight, query[0].weight)
    before = key.module[0].weight.clone()
    with torch.no_grad():
        query[0].weight.add_(1.0)
    key.start(query)  # only the first call copies
    torch.testing.assert_close(key.module[0].weight, before)
    key.update_parameters(query)
    torch.testing.assert_close(key.module[0].weight, 0.75 * before + 0.25 * query[0].weight)


def test_momentum_encoder_start_does_not_copy_over_a_loaded_state():
    query = _query()
    trained = MomentumEncoder(query, momentum=0.25)
    trained.update_parameters(query)
    with torch.no_grad():
        trained.module[0].weight.fill_(0.5)
    resumed = MomentumEncoder(query, momentum=0.25)
    resumed.load_state_dict(trained.state_dict())
    resumed.start(query)
    assert (resumed.module[0].weight == 0.5).all()


def test_momentum_encoder_encode_runs_the_named_heads_without_grad():
    query = _query()
    key = MomentumEncoder(query, momentum=0.25)
    key.start(query)
    images = torch.randn(5, 3)
    keys = key.encode(images, dict(a=2, b=1))
    assert list(keys) == ['a', 'b']
    feats = query[0](images)
    torch.testing.assert_close(keys['a'], query[2](feats)[0])
    torch.testing.assert_close(keys['b'], query[1](feats)[0])
    assert not keys['a'].requires_grad
