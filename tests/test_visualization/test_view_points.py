"""The aligned locations of the equivariant loss, probed from align_shared_regions, checked
against the geometry contract of docs/CONTRACTS.md computed here by hand."""
import itertools

import numpy as np
import pytest

from liftedcl_mm.visualization import coordinate_map, shared_region_points


def view_to_source(points, box, flip, size):
    """docs/CONTRACTS.md: column u of a W-wide view samples x = x1 + (u + 0.5)(x2 - x1)/W,
    after u -> W - 1 - u when flipped; in continuous coordinates (pixel i spans [i, i + 1)):
    x = x1 + u_c (x2 - x1) / W, u_c -> W - u_c when flipped."""
    height, width = size
    u = np.where(flip, width - points[:, 0], points[:, 0])
    return np.stack([box[0] + u * (box[2] - box[0]) / width,
                     box[1] + points[:, 1] * (box[3] - box[1]) / height], -1)


def roi_bin_centres(box_a, box_b, size):
    """RoIAlign (one sample per bin, aligned) centres of the boxes' intersection, row-major."""
    x0, y0 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    x1, y1 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    steps = (np.arange(size) + 0.5) / size
    ys, xs = np.meshgrid(y0 + steps * (y1 - y0), x0 + steps * (x1 - x0), indexing='ij')
    return np.stack([xs.ravel(), ys.ravel()], -1)


def test_coordinate_map_holds_cell_centres():
    cmap = coordinate_map(2, 3)
    assert cmap.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(cmap[0, 0, 0].numpy(), [0.5, 1.5, 2.5])
    np.testing.assert_allclose(cmap[0, 1, :, 0].numpy(), [0.5, 1.5])
    # stride 32: a ResNet centres output j on input pixel 32 j
    np.testing.assert_allclose(coordinate_map(64, 96, 32)[0, 0, 0].numpy(), [0.5, 32.5, 64.5])
    with pytest.raises(ValueError, match='multiple of the stride'):
        coordinate_map(64, 90, 32)


@pytest.mark.parametrize('flips', list(itertools.product([False, True], repeat=2)))
def test_both_views_map_back_to_the_same_source_points(flips):
    boxes = np.array([[12.3, 20.0, 150.7, 230.5], [40.0, 5.5, 191.0, 180.25]], np.float32)
    sizes = [(64, 48), (80, 80)]  # different view sizes and aspect ratios
    out = shared_region_points(boxes, flips, sizes, align_size=5)
    assert out['valid']
    expected = roi_bin_centres(boxes[0], boxes[1], 5)
    for points, box, flip, size, src in zip(out['view_points'], boxes, flips, sizes,
                                            out['source_points']):
        assert points.shape == (25, 2)
        assert (points >= 0).all() and (points <= np.array(size[::-1])).all()
        mine = view_to_source(points, box, flip, size)
        np.testing.assert_allclose(mine, expected, atol=1e-3)  # RoIAlign's bin centres
        np.testing.assert_allclose(src, expected, atol=1e-3)  # compose_crop agrees
    assert out['discrepancy'] < 1e-3
    # A flipped view sees the first column of locations on its right.
    first, last = out['view_points'][0][0, 0], out['view_points'][0][4, 0]
    assert (first > last) == flips[0]


def test_disjoint_views_and_alignment_options_pass_through():
    boxes = np.array([[0, 0, 50, 50], [60, 60, 100, 100]], np.float32)
    assert not shared_region_points(boxes, [False, False], [(32, 32)] * 2, 4)['valid']
    overlapping = np.array([[0, 0, 100, 100], [90, 90, 190, 190]], np.float32)
    assert shared_region_points(overlapping, [False, True], [(32, 32)] * 2, 4)['valid']
    # min_overlap is an option of align_shared_regions: 1% overlap fails a 50% minimum.
    assert not shared_region_points(overlapping, [False, True], [(32, 32)] * 2, 4,
                                    min_overlap=0.5)['valid']
    with pytest.raises(TypeError):
        shared_region_points(overlapping, [False, True], [(32, 32)] * 2, 4, no_such_option=1)
    with pytest.raises(ValueError, match='two views'):
        shared_region_points(boxes[:1], [False], [(32, 32)], 4)


def feature_centres_uniform(box_a, box_b, box, flip, size, stride, align_size):
    """By hand: the centre (view pixels, the view's own frame) of the feature that the default
    ('uniform') alignment samples at each location, with a ResNet's cell centres s j + 0.5:
    the map is read at index p / s - 0.5 (p: sample position in the view's own frame), clamped
    to the map, and that index's centre is s index + 0.5."""
    height, width = size
    centres = roi_bin_centres(box_a, box_b, align_size)
    u = (centres[:, 0] - box[0]) / (box[2] - box[0]) * width
    u = width - u if flip else u
    v = (centres[:, 1] - box[1]) / (box[3] - box[1]) * height
    index = np.stack([u, v], -1) / stride - 0.5
    limit = np.array([width, height]) / stride - 1
    return stride * np.clip(index, 0, limit) + 0.5


def test_feature_centres_show_the_half_cell_error_of_flipped_pairs():
    # Two 256x256 views with a stride-32 map (8x8); the shared region lies well inside both.
    boxes = np.array([[0.0, 0.0, 200.0, 200.0], [40.0, 30.0, 240.0, 230.0]], np.float32)
    sizes = [(256, 256)] * 2
    for flips in ([False, True], [True, False], [False, False]):
        out = shared_region_points(boxes, flips, sizes, align_size=4, feature_stride=32)
        for points, box, flip in zip(out['view_points'], boxes, flips):
            np.testing.assert_allclose(
                points, feature_centres_uniform(boxes[0], boxes[1], box, flip, sizes[0], 32, 4),
                atol=1e-3)
        # Each view's features sit (s - 1) / 2 = 15.5 view pixels left of the sample point in
        # its own frame: for a pair with one flipped view they land 31 view pixels (x 200/256
        # source pixels per view pixel) apart in the source; unflipped, in the same place.
        expected = 31 * 200 / 256 if any(flips) else 0.0
        assert out['discrepancy'] == pytest.approx(np.hypot(expected, 0), abs=1e-3), flips


def test_stride_cell_centres_pass_through():
    # The key view inside the query view: every location lies between the outermost cell
    # centres of both 8x8 maps (no border clamp).
    boxes = np.array([[0.0, 0.0, 300.0, 300.0], [50.0, 50.0, 250.0, 250.0]], np.float32)
    sizes = [(256, 256)] * 2
    options = dict(cell_centres='stride', view_size=(256, 256))
    # Sample positions do not depend on the convention ...
    plain = shared_region_points(boxes, [False, True], sizes, 4)
    passed = shared_region_points(boxes, [False, True], sizes, 4, **options)
    for a, b in zip(plain['view_points'], passed['view_points']):
        np.testing.assert_allclose(a, b, atol=1e-3)
    # ... while the features compared now sit on the same source pixel, flipped or not.
    for flips in ([False, True], [True, True], [False, False]):
        out = shared_region_points(boxes, flips, sizes, 4, feature_stride=32, **options)
        assert out['discrepancy'] < 1e-2, flips
        np.testing.assert_allclose(out['source_points'][0], plain['source_points'][0],
                                   atol=1e-2)
    # The default convention on the same pair: each view's features 15.5 view pixels left of
    # and above the sample point in its own frame; the flipped key's "left" is the source's
    # right. Source pixels per view pixel: 300/256 (query), 200/256 (key).
    out = shared_region_points(boxes, [False, True], sizes, 4, feature_stride=32)
    assert out['discrepancy'] == pytest.approx(
        np.hypot(15.5 * (300 + 200) / 256, 15.5 * (300 - 200) / 256), abs=1e-3)
