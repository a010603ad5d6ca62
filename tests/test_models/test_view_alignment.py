import pytest
import torch

from liftedcl_mm.models.utils import align_shared_regions
from liftedcl_mm.testing import reference_align

torch.set_num_threads(1)

BOTH = pytest.mark.parametrize('align', [align_shared_regions, reference_align],
                               ids=['batched', 'reference'])


def _coordinate_map(box, height, width, flipped):
    """(2, h, w) map whose cells hold the original-image (x, y) of their centre (CONTRACTS)."""
    x1, y1, x2, y2 = box
    cols = torch.arange(width, dtype=torch.float32)
    if flipped:
        cols = width - 1 - cols
    xs = x1 + (cols + 0.5) * (x2 - x1) / width
    ys = y1 + (torch.arange(height, dtype=torch.float32) + 0.5) * (y2 - y1) / height
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])


@BOTH
def test_sampled_locations_are_the_shared_box_grid(align):
    box_q, box_k = [10.0, 20.0, 110.0, 100.0], [40.0, 0.0, 140.0, 90.0]
    flips = [(False, False), (True, False), (False, True), (True, True)]
    feat_q = torch.stack([_coordinate_map(box_q, 64, 64, fq) for fq, _ in flips])
    feat_k = torch.stack([_coordinate_map(box_k, 48, 56, fk) for _, fk in flips])
    out_q, out_k, valid = align(feat_q, feat_k, torch.tensor([box_q] * 4),
                                torch.tensor([box_k] * 4),
                                torch.tensor([f[0] for f in flips]),
                                torch.tensor([f[1] for f in flips]), out_size=8)
    assert valid.tolist() == [True] * 4
    # Shared box [40, 20, 110, 90]; bin centres of an 8 x 8 grid over it.
    centres = (torch.arange(8, dtype=torch.float32) + 0.5) * 70.0 / 8
    want_x = (40.0 + centres).expand(8, 8)
    want_y = (20.0 + centres)[:, None].expand(8, 8)
    for out in (out_q, out_k):
        assert out.shape == (4, 2, 8, 8)
        for i in range(4):
            torch.testing.assert_close(out[i, 0], want_x, atol=1e-4, rtol=0)
            torch.testing.assert_close(out[i, 1], want_y, atol=1e-4, rtol=0)


@BOTH
def test_identical_views_give_identical_maps(align):
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(3, 4, 8, 8, generator=gen)
    boxes = torch.tensor([[0.0, 0.0, 50.0, 60.0], [5.0, 7.0, 30.0, 20.0], [1.0, 2.0, 3.0, 4.0]])
    flips = torch.tensor([False, True, False])
    out_q, out_k, valid = align(feat, feat.clone(), boxes, boxes.clone(), flips, flips.clone(),
                                out_size=8)
    assert valid.all()
    torch.testing.assert_close(out_q, out_k)
    # The shared box is the whole crop: an 8 x 8 resample of an 8 x 8 map is the (unflipped)
    # map itself.
    torch.testing.assert_close(out_q[0], feat[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_q[1], feat[1].flip(-1), atol=1e-5, rtol=1e-5)


@BOTH
def test_flipped_view_with_flip_flag_equals_unflipped_view(align):
    gen = torch.Generator().manual_seed(1)
    feat_q = torch.randn(4, 3, 8, 8, generator=gen)
    feat_k = torch.randn(4, 3, 8, 8, generator=gen)
    boxes_q = torch.tensor([[0.0, 0, 60, 60], [10, 10, 90, 70], [3, 4, 50, 40], [0, 0, 20, 30]])
    boxes_k = torch.tensor([[20.0, 10, 80, 80], [0, 0, 50, 50], [20, 0, 70, 39], [5, 5, 25, 35]])
    no = torch.zeros(4, dtype=torch.bool)
    yes = torch.ones(4, dtype=torch.bool)
    plain = align(feat_q, feat_k, boxes_q, boxes_k, no, no)
    # Flipping a view flips its feature map (for an equivariant encoder); recording the
    # flip must undo it.
    flipped = align(feat_q.flip(-1), feat_k, boxes_q, boxes_k, yes, no)
    both = align(feat_q.flip(-1), feat_k.flip(-1), boxes_q, boxes_k, yes, yes)
    for other in (flipped, both):
        torch.testing.assert_close(other[0], plain[0])
        torch.testing.assert_close(other[1], plain[1])
        assert torch.equal(other[2], plain[2])
    # Forgetting the flag changes the result (the test would notice a missing un-flip).
    wrong = align(feat_q.flip(-1), feat_k, boxes_q, boxes_k, no, no)
    assert not torch.allclose(wrong[0], plain[0])


@BOTH
def test_pairs_without_enough_overlap_are_invalid(align):
    boxes_q = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    boxes_k = torch.tensor([[20.0, 20, 30, 30], [10, 0, 20, 10], [8, 0, 18, 10], [2, 2, 8, 8]])
    feat = torch.randn(4, 2, 4, 4) + 5.0
    flips = torch.zeros(4, dtype=torch.bool)
    # Overlaps: none, touching edge, 20% of the smaller box, 100% of the smaller box.
    out_q, out_k, valid = align(feat, feat, boxes_q, boxes_k, flips, flips, out_size=4)
    assert valid.tolist() == [False, False, True, True]
    assert torch.equal(out_q[:2], torch.zeros_like(out_q[:2]))
    assert torch.equal(out_k[:2], torch.zeros_like(out_k[:2]))
    assert (out_q[2:] != 0).all()
    _, _, valid = align(feat, feat, boxes_q, boxes_k, flips, flips, out_size=4, min_overlap=0.3)
    assert valid.tolist() == [False, False, False, True]
    _, _, valid = align(feat, feat, boxes_q, boxes_k, flips, flips, out_size=4, min_overlap=0.1)
    assert valid.tolist() == [False, False, True, True]


def _random_pairs(num, seed, key_size=(7, 9)):
    gen = torch.Generator().manual_seed(seed)

    def boxes():
        corner = torch.rand(num, 2, generator=gen) * 150
        size = torch.rand(num, 2, generator=gen) * 120 + 5
        return torch.cat([corner, corner + size], dim=1)

    return (torch.randn(num, 16, 8, 8, generator=gen),
            torch.randn(num, 16, *key_size, generator=gen),
            boxes(), boxes(), torch.rand(num, generator=gen) > 0.5,
            torch.rand(num, generator=gen) > 0.5)


# maps of one size are resampled in one call, of two sizes in two
@pytest.mark.parametrize('key_size', [(7, 9), (8, 8)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_batched_equals_per_sample_reference(seed, key_size):
    feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k = _random_pairs(8, seed, key_size)
    feat_q.requires_grad_()
    feat_k.requires_grad_()
    got = align_shared_regions(feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k, out_size=16)
    want = reference_align(feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k, out_size=16)
    assert torch.equal(got[2], want[2])
    assert 0 < int(got[2].sum())  # the random boxes exercise valid pairs
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-5)
    # Same gradients through the resampling.
    weights = torch.randn_like(got[0])
    grads_got = torch.autograd.grad((got[0] * weights).sum() + got[1].sum(), (feat_q, feat_k))
    grads_want = torch.autograd.grad((want[0] * weights).sum() + want[1].sum(), (feat_q, feat_k))
    for g, w in zip(grads_got, grads_want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_invalid_pairs_in_a_random_batch():
    feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k = _random_pairs(8, 3)
    boxes_k[2] = torch.tensor([500.0, 500.0, 520.0, 530.0])  # far from every query box
    out_q, out_k, valid = align_shared_regions(feat_q, feat_k, boxes_q, boxes_k, flips_q,
                                               flips_k)
    assert not valid[2]
    assert torch.equal(out_q[2], torch.zeros_like(out_q[2]))
    assert torch.isfinite(out_q).all() and torch.isfinite(out_k).all()


def test_bad_inputs_raise():
    feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k = _random_pairs(2, 0)
    with pytest.raises(ValueError, match='bboxes_k'):
        align_shared_regions(feat_q, feat_k, boxes_q, boxes_k[:, :3], flips_q, flips_k)
    with pytest.raises(ValueError, match='flips_q'):
        align_shared_regions(feat_q, feat_k, boxes_q, boxes_k, flips_q[:1], flips_k)
    with pytest.raises(ValueError, match='feat_q and feat_k'):
        align_shared_regions(feat_q, feat_k[:, :3], boxes_q, boxes_k, flips_q, flips_k)
    with pytest.raises(ValueError, match='min_overlap'):
        align_shared_regions(feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k, min_overlap=2)


def test_half_precision_features_keep_dtype_and_precise_geometry():
    feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k = _random_pairs(4, 4)
    want = align_shared_regions(feat_q, feat_k, boxes_q, boxes_k, flips_q, flips_k)
    got = align_shared_regions(feat_q.bfloat16(), feat_k.bfloat16(), boxes_q, boxes_k,
                               flips_q, flips_k)
    assert got[0].dtype == got[1].dtype == torch.bfloat16
    # Only the rounding of the features themselves (bf16: ~3 significant digits).
    torch.testing.assert_close(got[0].float(), want[0], atol=3e-2, rtol=2e-2)
    torch.testing.assert_close(got[1].float(), want[1], atol=3e-2, rtol=2e-2)


def _true_centre_maps(box, flip, view=64, cells=8):
    """Maps whose channels hold the original-image (x, y) of each cell's ResNet centre.

    Cell ``j`` of a ``view``-pixel view is centred at view pixel ``stride * j + 0.5``; a flipped
    view's pixel ``u`` shows the unflipped view's ``view - u``. Computed here from the contract
    alone, not with the code under test.
    """
    stride = view / cells
    centre = stride * torch.arange(cells, dtype=torch.float32) + 0.5
    u = view - centre if flip else centre
    scale_x, scale_y = (box[2] - box[0]) / view, (box[3] - box[1]) / view
    xs, ys = box[0] + u * scale_x, box[1] + centre * scale_y
    return torch.stack([xs[None, :].expand(cells, cells), ys[:, None].expand(cells, cells)])


@pytest.mark.parametrize('cell_centres', ['uniform', 'stride'])
def test_stride_cell_centres_put_flipped_positives_on_the_same_pixel(cell_centres):
    # One crop of 128 px seen as a 64 px view with an 8x8 map (stride 8), once plain, once
    # flipped. Bilinear sampling of maps linear in position returns the position sampled.
    box = [10.0, 20.0, 138.0, 148.0]
    feat_q = _true_centre_maps(box, False)[None]
    feat_k = _true_centre_maps(box, True)[None]
    boxes = torch.tensor([box])
    q, k, valid = align_shared_regions(
        feat_q, feat_k, boxes, boxes, torch.tensor([False]), torch.tensor([True]), out_size=4,
        cell_centres=cell_centres, view_size=(64, 64))
    assert valid.all()
    # The shared box is the crop: bin centres at 8, 24, 40, 56 view px = 16, 48, 80, 112 px.
    want = box[0] + 2.0 * (16.0 * torch.arange(4) + 8.0)
    if cell_centres == 'stride':
        torch.testing.assert_close(q[0, 0], want[None, :].expand(4, 4))
        torch.testing.assert_close(k[0, 0], want[None, :].expand(4, 4))
        torch.testing.assert_close(q[0, 1], (want + 10.0)[:, None].expand(4, 4))
    else:
        # The uniform model misplaces both by (stride - 1) / 2 = 3.5 view px = 7 px, in
        # opposite directions: positives land 14 px apart (the issue's ~18 px at its scale).
        torch.testing.assert_close(q[0, 0], want[None, :].expand(4, 4) - 7.0)
        torch.testing.assert_close(k[0, 0], want[None, :].expand(4, 4) + 7.0)
    torch.testing.assert_close(q[0, 1], k[0, 1])


def test_stride_cell_centres_need_a_view_size():
    feat = torch.zeros(1, 2, 4, 4)
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0]])
    flips = torch.tensor([False])
    with pytest.raises(ValueError, match='view_size'):
        align_shared_regions(feat, feat, boxes, boxes, flips, flips, cell_centres='stride')
    with pytest.raises(ValueError, match='cell_centres'):
        align_shared_regions(feat, feat, boxes, boxes, flips, flips, cell_centres='centre')


@pytest.mark.parametrize('option', [None, 'stride'])
def test_liftedcl_passes_the_option_and_the_view_size(option, monkeypatch):
    import numpy as np
    from mmpretrain.structures import DataSample

    import liftedcl_mm  # noqa: F401
    from liftedcl_mm.models.algorithms import liftedcl as liftedcl_module
    from liftedcl_mm.registry import MODELS
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return align_shared_regions(*args, **kwargs)

    monkeypatch.setattr(liftedcl_module, 'align_shared_regions', spy)
    cfg = dict(
        type='LiftedCL', queue_len=16, feat_dim=8, align_size=2,
        backbone=dict(type='ResNet', depth=18, base_channels=4, out_indices=(3, )),
        equiv_neck=dict(type='EquivariantNeck', in_channels=32, hid_channels=16, out_channels=8),
        loss_equiv=dict(type='EquivariantInfoNCELoss', temperature=0.2),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0.0] * 3, std=[1.0] * 3))
    if option is not None:
        cfg['align_cell_centres'] = option
    model = MODELS.build(cfg)
    samples = []
    for flip in (False, True):
        sample = DataSample()
        sample.set_metainfo(dict(view_bboxes=np.array([[0, 0, 64, 64]] * 2, np.float32),
                                 view_flips=np.array([False, flip])))
        samples.append(sample)
    views = [torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)]
    losses = model.loss(views, samples)
    assert torch.isfinite(losses['loss_equiv'])
    assert seen['cell_centres'] == (option or 'uniform')
    assert tuple(seen['view_size']) == (64, 64)
