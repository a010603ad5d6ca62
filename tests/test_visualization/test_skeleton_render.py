"""Raster skeleton panels (liftedcl_mm/visualization/skeleton.py) on hand-built skeletons."""
import numpy as np
import pytest

from liftedcl_mm.skeleton import H36M_BONE_COLORS, H36M_JOINT_NAMES
from liftedcl_mm.testing.skeletons import joints_from_bones, template_bones
from liftedcl_mm.visualization import (VIEWS, bone_colors_rgb, face_front, project,
                                       render_skeleton, view_by_name)

BLUE, RED = bone_colors_rgb()[H36M_BONE_COLORS.index('tab:blue')], \
    bone_colors_rgb()[H36M_BONE_COLORS.index('tab:red')]


def _columns_of(panel, rgb):
    """Column indices of the pixels that have exactly the colour ``rgb``."""
    return np.nonzero((panel == np.asarray(rgb, np.uint8)).all(-1))[1]


def test_colours_follow_the_bone_table():
    colours = bone_colors_rgb()
    assert len(colours) == 16
    assert BLUE == (31, 119, 180) and RED == (214, 39, 40)
    assert colours[H36M_BONE_COLORS.index('black')] == (0, 0, 0)


def test_front_view_puts_the_subjects_left_on_the_viewers_right():
    skel = joints_from_bones(template_bones())
    panel = render_skeleton(skel, 'front', size=96)
    assert panel.shape == (96, 96, 3) and panel.dtype == np.uint8
    blue, red = _columns_of(panel, BLUE), _columns_of(panel, RED)
    assert len(blue) > 20 and len(red) > 20
    # The left (blue) bones lie right of the centre, the right (red) ones left of it.
    assert np.median(blue) > 48 > np.median(red)
    # Any yaw: turned to face the viewer first, the picture is the same.
    yawed = face_front(np.stack([skel @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]).T]))[0]
    np.testing.assert_array_equal(render_skeleton(yawed, VIEWS[0], size=96), panel)


def test_side_view_shows_the_face_to_the_right_and_head_up():
    skel = joints_from_bones(template_bones())
    side = project(skel, view_by_name('right side'))
    nose, thorax = H36M_JOINT_NAMES.index('neck_base'), H36M_JOINT_NAMES.index('thorax')
    assert side[nose, 0] > side[thorax, 0]  # facing +Y, seen from +X: the face looks right
    panel = render_skeleton(skel, 'right side', size=64)
    dark = np.nonzero((panel < 40).all(-1))[0]  # head dot and trunk are black
    assert dark.min() < 20  # the head is at the top of the panel


def test_non_finite_skeleton_gives_a_cross_and_bad_view_is_named():
    skel = joints_from_bones(template_bones())
    skel[5, 1] = np.nan
    panel = render_skeleton(skel, 'front', size=32)
    assert (panel[0, 0] == 160).all() and (panel[16, 16] == 160).all()
    with pytest.raises(ValueError, match='unknown view'):
        render_skeleton(skel, 'back', size=32)
