import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

import mmpose
from liftedcl_mm.skeleton import (H36M_BONE_PARENTS, H36M_BONES, H36M_FORWARD_AXIS,
                                  H36M_JOINT_NAMES, H36M_PARENTS, H36M_RIGHT_AXIS,
                                  H36M_ROTATION_DISTRIBUTIONS, H36M_ROTATION_LIMITS,
                                  H36M_SYMMETRIC_BONES, H36M_TEMPLATE_BONES, H36M_UP_AXIS,
                                  bone_matrix)

MMPOSE_H36M = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs', '_base_', 'datasets',
                       'h36m.py')


def test_joint_names_and_links_match_mmpose():
    info = Config.fromfile(MMPOSE_H36M).dataset_info
    names = [info.keypoint_info[i]['name'] for i in range(len(info.keypoint_info))]
    assert tuple(names) == H36M_JOINT_NAMES
    mmpose_links = {frozenset(names.index(n) for n in link['link'])
                    for link in info.skeleton_info.values()}
    assert mmpose_links == {frozenset(b) for b in H36M_BONES}
    assert len(H36M_BONES) == 16


def test_bone_matrix_gives_bone_vectors():
    joints = np.random.default_rng(0).normal(size=(17, 3))
    bones = bone_matrix().T @ joints
    for k, (parent, child) in enumerate(H36M_BONES):
        np.testing.assert_allclose(bones[k], joints[child] - joints[parent], atol=1e-6)


def test_template_shape_and_directions():
    assert H36M_TEMPLATE_BONES.shape == (16, 3)
    names = H36M_JOINT_NAMES
    lengths = np.linalg.norm(H36M_TEMPLATE_BONES, axis=1)
    assert np.all((lengths > 100) & (lengths < 500))  # millimetres
    for k, (parent, child) in enumerate(H36M_BONES):
        vec = H36M_TEMPLATE_BONES[k]
        if names[child] in ('left_hip', 'left_shoulder'):
            assert vec[0] < 0  # -X is the subject's left (right-handed, facing +Y, +Z up)
        if names[child] in ('right_hip', 'right_shoulder'):
            assert vec[0] > 0
        if names[child].endswith(('knee', 'foot', 'elbow', 'wrist')):
            assert vec[2] < 0  # limbs hang down
        if names[child] in ('spine', 'thorax', 'neck_base', 'head'):
            assert vec[2] > 0
        if names[child] == 'neck_base':
            assert vec[1] > 0  # the nose-level joint is in front of the thorax
    with pytest.raises(ValueError):
        H36M_TEMPLATE_BONES[0, 0] = 1.0  # read-only table


def test_frame_is_right_handed():
    forward, up, right = (np.array(v) for v in (H36M_FORWARD_AXIS, H36M_UP_AXIS, H36M_RIGHT_AXIS))
    np.testing.assert_array_equal(np.cross(forward, up), right)  # right = forward x up
    np.testing.assert_array_equal(np.cross(up, right), forward)  # forward = up x right
    assert np.linalg.det(np.stack([right, forward, up])) == 1.0
    # The template's right hip lies on the subject's right.
    assert H36M_TEMPLATE_BONES[H36M_BONES.index((0, 1))] @ right > 0


def test_bone_parents_are_the_bones_ending_at_the_parent_joint():
    assert len(H36M_BONE_PARENTS) == 16
    for k, (parent, _) in enumerate(H36M_BONES):
        pb = H36M_BONE_PARENTS[k]
        if parent == 0:
            assert pb == -1
        else:
            assert H36M_BONES[pb][1] == parent and pb < k


def test_symmetric_rows_mirror_each_other():
    lim = np.asarray(H36M_ROTATION_LIMITS)
    dist = np.asarray(H36M_ROTATION_DISTRIBUTIONS)
    assert lim.shape == (16, 3, 2) and dist.shape == (16, 3, 3)
    assert np.all(lim[..., 0] <= lim[..., 1])
    # Every mode lies inside its limits; spreads are positive and finite (not uniform).
    assert np.all((dist[..., 0] >= lim[..., 0]) & (dist[..., 0] <= lim[..., 1]))
    assert np.all((dist[..., 1:] > 0) & np.isfinite(dist[..., 1:]))
    mirror = np.array([-1.0, 1.0, 1.0])
    pairs = set()
    for right, left in H36M_SYMMETRIC_BONES:
        pr, cr = H36M_BONES[right]
        pl, cl = H36M_BONES[left]
        assert H36M_JOINT_NAMES[cr].replace('right', 'left') == H36M_JOINT_NAMES[cl]
        np.testing.assert_allclose(H36M_TEMPLATE_BONES[left], mirror * H36M_TEMPLATE_BONES[right])
        # Reflecting x -> -x keeps a (about X) and negates b (about Y) and c (about Z).
        np.testing.assert_array_equal(lim[left, 0], lim[right, 0])
        np.testing.assert_array_equal(lim[left, 1], -lim[right, 1][::-1])
        np.testing.assert_array_equal(lim[left, 2], -lim[right, 2][::-1])
        # Distributions: a kept; b and c modes negated, their two spreads swapped.
        np.testing.assert_array_equal(dist[left, 0], dist[right, 0])
        np.testing.assert_array_equal(dist[left, 1:, 0], -dist[right, 1:, 0])
        np.testing.assert_array_equal(dist[left, 1:, 1:], dist[right, 1:, ::-1][:, :2])
        pairs |= {right, left}
    # Central bones (spine, neck, head) mirror onto themselves: symmetric b and c ranges.
    for k in set(range(16)) - pairs:
        np.testing.assert_array_equal(lim[k, 1], -lim[k, 1][::-1])
        np.testing.assert_array_equal(lim[k, 2], -lim[k, 2][::-1])
        np.testing.assert_array_equal(dist[k, 1:, 0], 0.0)
        np.testing.assert_array_equal(dist[k, 1:, 1], dist[k, 1:, 2])
        assert H36M_TEMPLATE_BONES[k][0] == 0


def test_hinges_bend_one_way_only():
    lim = np.asarray(H36M_ROTATION_LIMITS)
    for name in ('right_foot', 'left_foot', 'right_wrist', 'left_wrist'):
        k = H36M_JOINT_NAMES.index(name) - 1
        (a_lo, a_hi), (b_lo, b_hi) = lim[k, 0], lim[k, 1]
        if name.endswith('foot'):
            assert a_hi == 0 and a_lo <= -120  # the shin folds backwards (a < 0) only
        else:
            assert a_lo == 0 and a_hi >= 120  # the forearm folds forwards (a > 0) only
        assert max(abs(b_lo), abs(b_hi)) <= 5  # no sideways bending beyond laxity


def test_thigh_rows_follow_the_paper():
    lim = np.asarray(H36M_ROTATION_LIMITS)
    for name in ('right_knee', 'left_knee'):
        k = H36M_JOINT_NAMES.index(name) - 1
        assert H36M_BONES[k][1] == H36M_JOINT_NAMES.index(name)
        # Swings +-90 about the two axes across the bone, a full turn about the bone (Z) itself.
        np.testing.assert_array_equal(lim[k], [[-90, 90], [-90, 90], [-180, 180]])
    assert H36M_PARENTS[0] == -1


def test_bone_colors_follow_the_side_of_the_child_joint():
    from liftedcl_mm.skeleton import H36M_BONE_COLORS, H36M_BONES, H36M_JOINT_NAMES
    assert len(H36M_BONE_COLORS) == len(H36M_BONES) == 16
    by_child = {H36M_JOINT_NAMES[c]: color for (_, c), color in zip(H36M_BONES, H36M_BONE_COLORS)}
    assert by_child['left_knee'] == 'tab:blue' and by_child['right_wrist'] == 'tab:red'
    assert by_child['spine'] == by_child['head'] == 'black'
