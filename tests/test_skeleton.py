import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

import mmpose
from liftedcl_mm.skeleton import (H36M_BONES, H36M_JOINT_NAMES, H36M_PARENTS,
                                  H36M_ROTATION_LIMITS, H36M_SYMMETRIC_BONES,
                                  H36M_TEMPLATE_BONES, bone_matrix)

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
            assert vec[0] > 0  # +X is the subject's left
        if names[child] in ('right_hip', 'right_shoulder'):
            assert vec[0] < 0
        if names[child].endswith(('knee', 'foot', 'elbow', 'wrist')):
            assert vec[2] < 0  # limbs hang down
        if names[child] in ('spine', 'thorax', 'neck_base', 'head'):
            assert vec[2] > 0
    with pytest.raises(ValueError):
        H36M_TEMPLATE_BONES[0, 0] = 1.0  # read-only table


def test_symmetric_rows_mirror_each_other():
    lim = np.asarray(H36M_ROTATION_LIMITS)
    assert lim.shape == (16, 3, 2)
    assert np.all(lim[..., 0] <= lim[..., 1])
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
        pairs |= {right, left}
    # Central bones (spine, neck, head) mirror onto themselves: symmetric b and c ranges.
    for k in set(range(16)) - pairs:
        np.testing.assert_array_equal(lim[k, 1], -lim[k, 1][::-1])
        np.testing.assert_array_equal(lim[k, 2], -lim[k, 2][::-1])
        assert H36M_TEMPLATE_BONES[k][0] == 0


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
