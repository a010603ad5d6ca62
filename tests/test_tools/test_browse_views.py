"""tools/visualization/browse_views.py on the demo data: the points drawn in both views are the
same source pixel (checked here from the recorded geometry by hand), and the PNGs show it."""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from liftedcl_mm.visualization import count_panels

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'visualization', 'browse_views.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')
sys.path.insert(0, osp.join(ROOT, 'tools', 'visualization'))
import browse_views  # noqa: E402


def view_to_source(points, box, flip, size):
    """docs/CONTRACTS.md in continuous coordinates: view x_c (flipped: W - x_c) scales into
    [x1, x2] of the source, y_c into [y1, y2]."""
    height, width = size
    u = np.where(flip, width - points[:, 0], points[:, 0])
    return np.stack([box[0] + u * (box[2] - box[0]) / width,
                     box[1] + points[:, 1] * (box[3] - box[1]) / height], -1)


@pytest.fixture(scope='module')
def browsed(tmp_path_factory):
    out = tmp_path_factory.mktemp('browse')
    records = browse_views.main([TINY, '--output-dir', str(out), '--num', '6',
                                 '--panel-size', '192'])
    return out, records


def test_points_of_both_views_are_the_same_source_pixel(browsed):
    _, records = browsed
    assert len(records) == 6
    assert any(r['view_flips'][:2].any() for r in records)  # flipped views are covered
    assert any(not r['view_flips'][:2].all() for r in records)
    for r in records:
        geometry = r['geometry']
        assert r['align_size'] == 4  # the tiny config's model.align_size
        assert geometry['valid']
        boxes, flips, sizes = r['view_bboxes'], r['view_flips'], r['view_sizes']
        src = [view_to_source(p, b, f, s)
               for p, b, f, s in zip(geometry['view_points'], boxes, flips, sizes)]
        assert src[0].shape == (16, 2)
        assert np.abs(src[0] - src[1]).max() < 1.0  # the same source pixel (in fact ~1e-4)
        # ... and the one drawn on the source panel, inside both boxes.
        np.testing.assert_allclose(geometry['source_points'][0], src[0], atol=1e-2)
        for box in boxes[:2]:
            assert (src[0] >= box[:2] - 1e-3).all() and (src[0] <= box[2:] + 1e-3).all()
        assert (r['source'].shape[:2] == np.array([256, 192])).all()


def test_pngs_have_three_panels_with_the_points_drawn(browsed):
    out, records = browsed
    for r in records:
        image = cv2.imread(r['out_file'])
        assert image is not None, r['out_file']
        image = image[..., ::-1]
        layout = r['layout']
        assert image.shape == (layout['height'], layout['width'], 3)
        # source 256x192 shown 192 high (144 wide), two 64x64 views shown 192x192
        widths = (layout['boxes'][0, :, 2] - layout['boxes'][0, :, 0]).tolist()
        assert widths == [144, 192, 192]
        assert count_panels(image) == [3]
        for x0, y0, x1, y1 in layout['boxes'][0]:
            assert image[y0:y1, x0:x1].std() > 10  # not blank
        # The dot of location 0 (red) sits where the tool says, in each view panel.
        colour = browse_views.point_colors(16)[0].astype(int)
        for (x0, y0, _, _), points, size in zip(layout['boxes'][0][1:],
                                                r['geometry']['view_points'], r['view_sizes']):
            scale = 192 / size[0]
            cx = int(round(x0 + points[0, 0] * scale - 0.5))
            cy = int(round(y0 + points[0, 1] * scale - 0.5))
            assert np.abs(image[cy, cx].astype(int) - colour).sum() < 60


def test_cli_and_alignment_options(tmp_path):
    # Every pair "fails" a minimum overlap of 100% of the smaller box unless one box holds the
    # other: the option reaches align_shared_regions.
    records = browse_views.main([TINY, '--output-dir', str(tmp_path), '--num', '2',
                                 '--start', '3', '--panel-size', '96',
                                 '--align-args', 'min_overlap=1.0',
                                 '--cfg-options', 'model.align_size=3'])
    assert [osp.basename(r['out_file'])[:5] for r in records] == ['00003', '00004']
    assert all(r['align_size'] == 3 for r in records)
    plain = browse_views.main([TINY, '--output-dir', str(tmp_path / 'plain'), '--num', '2',
                               '--start', '3', '--panel-size', '96'])
    assert all(r['geometry']['valid'] for r in plain)
    assert not all(r['geometry']['valid'] for r in records)
    for r in records:
        boxes = r['view_bboxes']
        inside = ((boxes[0, :2] >= boxes[1, :2]).all() and (boxes[0, 2:] <= boxes[1, 2:]).all()) \
            or ((boxes[1, :2] >= boxes[0, :2]).all() and (boxes[1, 2:] <= boxes[0, 2:]).all())
        assert r['geometry']['valid'] == inside
        assert count_panels(cv2.imread(r['out_file'])[..., ::-1]) == [3]
    proc = subprocess.run([sys.executable, TOOL, TINY, '--output-dir', str(tmp_path / 'cli'),
                           '--num', '1', '--panel-size', '96'], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'points agree within 0.0' in proc.stdout
    assert len(list((tmp_path / 'cli').glob('*.png'))) == 1


def test_pipeline_without_view_geometry_is_refused(tmp_path):
    cfg = tmp_path / 'no_geometry.py'
    cfg.write_text(f"_base_ = [{TINY!r}]\n"
                   "train_dataloader = dict(dataset=dict(pipeline=[\n"
                   "    dict(type='LoadImageWithCheck'), dict(type='PackInputs')]))\n")
    with pytest.raises(ValueError, match='MultiViewWithGeometry'):
        browse_views.main([str(cfg), '--output-dir', str(tmp_path / 'o'), '--num', '1'])


def test_feature_centres_and_the_models_convention(tmp_path):
    # The tiny model's 64x64 views give 2x2 maps: cells centred on view pixels 0.5 and 32.5.
    records = browse_views.main([TINY, '--output-dir', str(tmp_path), '--num', '2',
                                 '--panel-size', '96', '--feature-stride', '32'])
    for r in records:
        for points in r['geometry']['view_points']:
            assert (points >= 0.5 - 1e-4).all() and (points <= 32.5 + 1e-4).all()
        assert count_panels(cv2.imread(r['out_file'])[..., ::-1]) == [3]
    records = browse_views.main([TINY, '--output-dir', str(tmp_path / 's'), '--num', '1',
                                 '--panel-size', '96', '--cfg-options',
                                 'model.align_cell_centres=stride'])
    assert records[0]['align_args'] == dict(cell_centres='stride', view_size=(64, 64))
    assert records[0]['geometry']['discrepancy'] < 1e-2  # sample positions: any convention
