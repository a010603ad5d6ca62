"""Panel grids (liftedcl_mm/visualization/panels.py): geometry, pasting, finding panels back."""
import numpy as np
import pytest

from liftedcl_mm.visualization import GUTTER_RGB, compose_grid, count_panels, grid_layout


def test_layout_geometry():
    layout = grid_layout([30, 50], [40, 60], gutter=4, title_lines=1, top_lines=2)
    boxes = layout['boxes']
    assert boxes.shape == (2, 2, 4)
    # columns: 4 | 30 | 4 | 50 | 4 = 92 wide; rows: top band (2 x 14) + gutter, then each row
    # is a 14-pixel title band, the panel, a gutter.
    assert layout['width'] == 92
    assert boxes[0, 0].tolist() == [4, 4 + 28 + 4 + 14, 34, 4 + 28 + 4 + 14 + 40]
    assert boxes[0, 1, 0] == 38 and boxes[1, 1, 2] == 88
    assert boxes[1, 0, 1] == boxes[0, 0, 3] + 4 + 14
    assert layout['height'] == boxes[1, 0, 3] + 4
    assert (layout['title_boxes'][:, :, 3] == boxes[:, :, 1]).all()
    with pytest.raises(ValueError):
        grid_layout([], [10])


def test_compose_and_count_panels():
    rng = np.random.default_rng(0)
    layout = grid_layout([64, 64, 8, 80], [64, 64, 64], title_lines=1, top_lines=1)
    panels = [[rng.integers(0, 255, (64, w, 3), dtype=np.uint8) if w != 8 else None
               for w in (64, 64, 8, 80)] for _ in range(3)]
    titles = [[['a panel'], ['b'], None, ['c']]] * 3
    image = compose_grid(panels, layout, titles, ['a caption line'])
    assert image.shape == (layout['height'], layout['width'], 3)
    # The empty column is gutter only: three panels per row, three rows; text is ignored.
    assert count_panels(image) == [3, 3, 3]
    x0, y0, x1, y1 = layout['boxes'][2, 3]
    np.testing.assert_array_equal(image[y0:y1, x0:x1], panels[2][3])
    assert (image[0, 0] == GUTTER_RGB).all()
    # Titles are written (white text on the gutter colour).
    tx0, ty0, tx1, ty1 = layout['title_boxes'][0, 0]
    assert (image[ty0:ty1, tx0:tx1] > 200).all(-1).any()
    with pytest.raises(ValueError, match='panel \\(0, 0\\)'):
        compose_grid([[np.zeros((10, 10, 3), np.uint8)]], grid_layout([64], [64]))
