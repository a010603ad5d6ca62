import os.path as osp
import pickle
import shutil
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config

from liftedcl_mm.datasets.skeleton_prior import (SkeletonPriorDataset, _sample_skeleton_reference,
                                                 euler_to_matrix, load_skeleton_file,
                                                 sample_skeletons, truncated_split_normal_ppf,
                                                 up_axis_rotation)
from liftedcl_mm.registry import DATASETS
from liftedcl_mm.skeleton import (H36M_BONE_PARENTS, H36M_BONES, H36M_JOINT_NAMES,
                                  H36M_ROTATION_DISTRIBUTIONS, H36M_ROTATION_LIMITS,
                                  H36M_SYMMETRIC_BONES, H36M_TEMPLATE_BONES,
                                  check_prior_statistics, format_statistics, prior_statistics)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The authors' released prior (MIT), kept beside the repository; tests that need it skip without.
AUTHORS_PRIOR = osp.join(ROOT, '..', 'shared', 'reference', 'authors_prior', 'norm_joints.pt')
needs_authors_prior = pytest.mark.skipif(not osp.isfile(AUTHORS_PRIOR),
                                         reason='authors\' norm_joints.pt not available')


def _rot(axis, deg):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return {
        'x': np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        'y': np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        'z': np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


@pytest.fixture(scope='module')
def sampled():
    return sample_skeletons(10000, seed=0, return_info=True)


def test_euler_matches_elementary_products():
    angles = np.random.default_rng(1).uniform(-180, 180, (20, 3))
    mats = euler_to_matrix(angles)
    for ang, mat in zip(angles, mats):
        ref = _rot('x', ang[0]) @ _rot('y', ang[1]) @ _rot('z', ang[2])
        np.testing.assert_allclose(mat, ref, atol=1e-12)


def test_shapes_norm_and_finiteness(sampled):
    skel, info = sampled
    assert skel.shape == (10000, 17, 3) and skel.dtype == np.float32
    assert np.all(np.isfinite(skel))
    np.testing.assert_allclose(np.linalg.norm(skel.reshape(10000, -1), axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(skel[:, 0], 0.0, atol=1e-7)  # root at the origin


def test_bone_lengths_within_alpha_range(sampled):
    _, info = sampled
    raw = info['raw']
    tmpl_len = np.linalg.norm(H36M_TEMPLATE_BONES, axis=1)
    for k, (parent, child) in enumerate(H36M_BONES):
        ratio = np.linalg.norm(raw[:, child] - raw[:, parent], axis=1) / tmpl_len[k]
        assert ratio.min() >= 0.9 - 1e-9 and ratio.max() <= 1.1 + 1e-9
        # Both ends of the range are actually reached (uniform over 10K draws).
        assert ratio.min() < 0.91 and ratio.max() > 1.09
    # The published skeletons are raw / scale rotated about Z: lengths scale-invariant ratios.
    skel, _ = sampled
    lens = np.linalg.norm(skel[:, [c for _, c in H36M_BONES]] - skel[:, [p for p, _ in H36M_BONES]],
                          axis=2)
    rel = (lens / lens[:, [1]]) / (tmpl_len / tmpl_len[1])
    assert rel.min() >= 0.9 / 1.1 - 1e-5 and rel.max() <= 1.1 / 0.9 + 1e-5


def _frames(angles):
    """Each bone's frame G_k (N, b, 3, 3) from relative angles, by the elementary rotations."""
    num = angles.shape[0]
    frames = np.zeros((num, 16, 3, 3))
    for n in range(num):
        for k in range(16):
            a, b, c = angles[n, k]
            rot = _rot('x', a) @ _rot('y', b) @ _rot('z', c)
            pb = H36M_BONE_PARENTS[k]
            frames[n, k] = rot if pb < 0 else frames[n, pb] @ rot
    return frames


def test_bones_follow_the_chain_within_limits(sampled):
    skel, info = sampled
    lim = np.asarray(H36M_ROTATION_LIMITS)
    # Undo normalisation and the vertical rotation with the recorded yaw, then compare.
    yaw = info['yaw']
    unrot = np.einsum('nij,nkj->nki',
                      np.stack([_rot('z', -y) for y in yaw[:2000]]), skel[:2000].astype(float))
    np.testing.assert_allclose(unrot * info['scale'][:2000, None, None], info['raw'][:2000],
                               atol=1e-3 * info['scale'].max())
    assert np.all(info['angles'] >= lim[..., 0]) and np.all(info['angles'] <= lim[..., 1])
    # Each bone, seen in its own frame, is its scaled template: bone = G_k alpha_k t_k.
    idx = np.arange(0, 10000, 50)
    frames = _frames(info['angles'][idx])
    raw = info['raw'][idx]
    for k, (parent, child) in enumerate(H36M_BONES):
        local = np.einsum('nji,nj->ni', frames[:, k], raw[:, child] - raw[:, parent])
        np.testing.assert_allclose(local, info['alphas'][idx, k, None] * H36M_TEMPLATE_BONES[k],
                                   atol=1e-9)


def test_hinges_fold_the_anatomical_way_in_the_parent_frame(sampled):
    """In the thigh's own frame the shin only folds back; in the upper arm's the forearm only
    folds forward, whatever the hip or shoulder does (exact, every sampled skeleton)."""
    _, info = sampled
    idx = np.arange(0, 10000, 20)
    frames = _frames(info['angles'][idx])
    raw = info['raw'][idx]
    for name in ('right_foot', 'left_foot', 'right_wrist', 'left_wrist'):
        k = H36M_JOINT_NAMES.index(name) - 1
        parent, child = H36M_BONES[k]
        pb = H36M_BONE_PARENTS[k]
        local = np.einsum('nji,nj->ni', frames[:, pb], raw[:, child] - raw[:, parent])
        local /= np.linalg.norm(local, axis=1, keepdims=True)
        if name.endswith('foot'):
            assert np.all(local[:, 1] <= 1e-12)  # backwards (-Y of the thigh)
        else:
            assert np.all(local[:, 1] >= -1e-12)  # forwards (+Y of the upper arm)
        assert np.all(np.abs(local[:, 0]) <= np.sin(np.deg2rad(5)) + 1e-12)  # no sideways bend
        # Flexion = angle to the parent bone, at most the row's limit.
        flex = np.degrees(np.arccos(np.clip(-local[:, 2], -1, 1)))
        assert flex.max() <= 150 + 1e-9 and flex.max() > 100


def test_truncated_normal_matches_scipy():
    from scipy.stats import truncnorm
    rng = np.random.default_rng(0)
    u = rng.random(1000)
    for lo, hi, mode, std in ((-150, 0, -15, 35), (-90, 90, 10, 30), (0, 150, 40, 40),
                              (-180, 180, 0, 15), (-5, 5, 5, 2), (-40, 20, -40, 8)):
        ours = truncated_split_normal_ppf(u, lo, hi, mode, std, std)
        ref = truncnorm.ppf(u, (lo - mode) / std, (hi - mode) / std, loc=mode, scale=std)
        np.testing.assert_allclose(ours, ref, atol=1e-7)
        assert ours.min() >= lo and ours.max() <= hi
    np.testing.assert_allclose(truncated_split_normal_ppf(u, -10, 30, 0, np.inf, np.inf),
                               -10 + 40 * u)
    np.testing.assert_array_equal(truncated_split_normal_ppf(u, 5, 5, 5, 3, 3), 5.0)


@pytest.mark.parametrize('lo,hi,mode,below,above', [(-90, 90, 0, 8, 30), (-150, 0, -10, 40, 10),
                                                    (0, 150, 15, 10, 45), (-20, 10, 0, 5, 3)])
def test_split_normal_matches_numerical_inversion(lo, hi, mode, below, above):
    # Independent: integrate the density on a fine grid and invert the cumulative sum.
    x = np.linspace(lo, hi, 200001)
    dens = np.exp(-0.5 * ((x - mode) / np.where(x < mode, below, above))**2)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
    cdf /= cdf[-1]
    u = np.random.default_rng(1).random(2000)
    np.testing.assert_allclose(truncated_split_normal_ppf(u, lo, hi, mode, below, above),
                               np.interp(u, cdf, x), atol=2e-3)
    # The share below the mode is the density's mass there.
    share = np.mean(truncated_split_normal_ppf(u, lo, hi, mode, below, above) < mode)
    assert share == pytest.approx(np.interp(mode, x, cdf), abs=0.04)


def test_uniform_distributions_cover_the_limits():
    _, info = sample_skeletons(4000, seed=2, distributions='uniform', return_info=True)
    lim = np.asarray(H36M_ROTATION_LIMITS)
    ang = info['angles']
    width = lim[..., 1] - lim[..., 0]
    # Uniform: both ends of every range are approached and the mean sits in the middle.
    assert np.all(ang.min(0) - lim[..., 0] <= 0.01 * width + 1e-9)
    assert np.all(lim[..., 1] - ang.max(0) <= 0.01 * width + 1e-9)
    assert np.all(np.abs(ang.mean(0) - lim.mean(-1)) <= 0.03 * width + 1e-9)
    # The default distributions: natural poses dominate, lopsided where the joint is.
    _, info = sample_skeletons(4000, seed=2, return_info=True)
    dist = np.asarray(H36M_ROTATION_DISTRIBUTIONS)
    thigh = H36M_BONES.index((1, 2))
    flexion = info['angles'][:, thigh, 0]
    # Hip: the two sides hold masses in the ratio of their spreads (8 : 30), so extension
    # beyond 2 stds of its side is rare (8 / 38 * 2 * Phi(-2) = 1%), flexion past 45 common.
    from scipy.stats import norm
    mode, below, above = dist[thigh, 0]
    assert np.mean(flexion < mode) == pytest.approx(below / (below + above), abs=0.02)
    assert np.mean(flexion < mode - 2 * below) == pytest.approx(
        below / (below + above) * 2 * norm.cdf(-2), abs=0.005)
    assert np.mean(flexion > 45) > 0.1
    assert np.std(info['angles'][:, thigh, 2]) == pytest.approx(dist[thigh, 2, 1], rel=0.1)


def test_new_sampler_meets_every_statistics_target(sampled):
    skel, _ = sampled
    stats = prior_statistics(skel, up_axis='+z')
    rows = check_prior_statistics(stats)
    assert all(r['passed'] for r in rows), format_statistics(rows)
    assert stats['handedness'] == 1.0 and stats['knee_wrong_way'] < 0.01
    # Natural poses dominate, the tails stay (authors' prior: knee 29, thigh 19 deg).
    assert 20 < stats['knee_flexion_median'] < 40 and stats['thigh_angle_p95'] > 55
    # The stats do not depend on the yaw the sampler adds.
    flat = sample_skeletons(10000, seed=0, rotate_vertical=False)
    assert prior_statistics(flat) == pytest.approx(stats, rel=1e-4, abs=1e-6)


def test_mirrored_sampler_fails_handedness(sampled):
    skel, _ = sampled
    mirrored = skel * np.array([-1.0, 1.0, 1.0], np.float32)  # the old, left-handed frame
    rows = {r['key']: r for r in check_prior_statistics(prior_statistics(mirrored))}
    assert not rows['handedness']['passed'] and rows['handedness']['value'] == 0.0
    assert not rows['knee_wrong_way']['passed']  # a mirror also turns the knees' axes


def test_legs_point_down_and_head_up(sampled):
    _, info = sampled
    raw = info['raw']
    # The knees never rise far above the hips (thigh swing <= 90 deg from the pelvis, which
    # tilts at most ~12 deg) and the head stays above the root.
    for name in ('right_knee', 'left_knee'):
        j = H36M_JOINT_NAMES.index(name)
        thigh = raw[:, j] - raw[:, H36M_BONES[j - 1][0]]
        assert np.all(thigh[:, 2] / np.linalg.norm(thigh, axis=1) < np.sin(np.deg2rad(13)))
        assert np.mean(thigh[:, 2] < 0) > 0.99
    assert np.all(raw[:, 10, 2] > raw[:, 0, 2])


def test_left_right_symmetric_statistics(sampled):
    skel, info = sampled
    raw = info['raw']
    for right, left in H36M_SYMMETRIC_BONES:
        (pr, cr), (pl, cl) = H36M_BONES[right], H36M_BONES[left]
        len_r = np.linalg.norm(raw[:, cr] - raw[:, pr], axis=1).mean()
        len_l = np.linalg.norm(raw[:, cl] - raw[:, pl], axis=1).mean()
        assert abs(len_r - len_l) / len_r < 0.01
        vr, vl = raw[:, cr] - raw[:, pr], raw[:, cl] - raw[:, pl]
        # Mirror images: x flips sign, y and z statistics agree.
        assert abs(vr[:, 0].mean() + vl[:, 0].mean()) < 0.03 * np.abs(vr).mean() * 3
        assert abs(np.abs(vr[:, 0]).mean() - np.abs(vl[:, 0]).mean()) < 0.03 * np.abs(vr).mean()
        assert abs(vr[:, 1].mean() - vl[:, 1].mean()) < 0.03 * np.abs(vr).mean()
        assert abs(vr[:, 2].mean() - vl[:, 2].mean()) < 0.03 * np.abs(vr).mean()
    # Right joints lie at +X, left at -X (before the vertical rotation): right-handed frame.
    for side, sign in (('right', 1), ('left', -1)):
        for joint in ('hip', 'shoulder', 'elbow', 'wrist', 'knee', 'foot'):
            x = raw[:, H36M_JOINT_NAMES.index(f'{side}_{joint}'), 0]
            assert sign * x.mean() > 0, (side, joint)
    # Faces forward: the nose-level joint lies at +Y of the thorax.
    assert np.mean(raw[:, 9, 1] > raw[:, 8, 1]) > 0.99


def test_seeds():
    a = sample_skeletons(50, seed=3)
    np.testing.assert_array_equal(a, sample_skeletons(50, seed=3))
    assert not np.allclose(a, sample_skeletons(50, seed=4))


def test_vectorised_matches_loop_reference(sampled):
    skel, info = sampled
    for i in range(0, 10000, 500):
        ref = _sample_skeleton_reference(info['alphas'][i], info['angles'][i], info['yaw'][i])
        np.testing.assert_allclose(skel[i], ref, atol=1e-6)


def test_no_vertical_rotation():
    skel, info = sample_skeletons(20, seed=0, rotate_vertical=False, return_info=True)
    np.testing.assert_allclose(skel, info['raw'] / info['scale'][:, None, None], atol=1e-6)


def test_speed():
    sample_skeletons(100, seed=0)
    start = time.perf_counter()
    sample_skeletons(10000, seed=0)
    # Target 0.5 s on a quiet core; the slack covers a shared test machine.
    assert time.perf_counter() - start < 1.5


def test_bad_arguments():
    with pytest.raises(ValueError, match='num'):
        sample_skeletons(0)
    with pytest.raises(ValueError, match='length_range'):
        sample_skeletons(5, length_range=(1.1, 0.9))
    with pytest.raises(ValueError, match='shape'):
        sample_skeletons(5, limits=np.zeros((15, 3, 2)))
    with pytest.raises(ValueError, match='shape'):
        sample_skeletons(5, distributions=np.zeros((16, 3, 2)))
    with pytest.raises(ValueError, match='stds > 0'):
        sample_skeletons(5, distributions=np.zeros((16, 3, 3)))
    one_sided = np.array(H36M_ROTATION_DISTRIBUTIONS)
    one_sided[0, 0, 1] = np.inf
    with pytest.raises(ValueError, match='both inf'):
        sample_skeletons(5, distributions=one_sided)
    outside = np.array(H36M_ROTATION_DISTRIBUTIONS)
    outside[2, 0, 0] = 10.0  # a knee mode beyond its 0 deg limit
    with pytest.raises(ValueError, match='mode'):
        sample_skeletons(5, distributions=outside)
    with pytest.raises(ValueError, match='uniform'):
        sample_skeletons(5, distributions='normal')


def test_dataset_and_cache(tmp_path):
    cache = tmp_path / 'sub' / 'skel.npy'
    ds = DATASETS.build(dict(type='SkeletonPriorDataset', num_samples=64, seed=1,
                             cache_file=str(cache)))
    assert len(ds) == 64 and ds.skeletons.dtype == np.float32
    assert ds[3]['joints'].shape == (17, 3)
    np.testing.assert_array_equal(ds[3]['joints'], sample_skeletons(64, seed=1)[3])
    assert ds.metainfo['joint_names'] == H36M_JOINT_NAMES
    assert cache.is_file() and not list(cache.parent.glob('.tmp_*'))
    # Cached values are loaded, not resampled: overwrite them and the dataset serves the file
    np.save(cache, ds.skeletons[::-1].copy())
    again = SkeletonPriorDataset(num_samples=64, seed=1, cache_file=str(cache))
    np.testing.assert_array_equal(again.skeletons, ds.skeletons[::-1])
    with pytest.raises(ValueError, match='skel.npy'):
        SkeletonPriorDataset(num_samples=65, seed=1, cache_file=str(cache))
    # the sidecar holds the sampling arguments: a cache of other ones is refused, by name
    for other, needle in ((dict(seed=2), 'seed=1'), (dict(seed=1, length_range=(0.8, 1.2)),
                                                       'length_range'),
                          (dict(seed=1, distributions='uniform'), 'distributions')):
        with pytest.raises(ValueError, match=needle):
            SkeletonPriorDataset(num_samples=64, cache_file=str(cache), **other)
    # a cache without a sidecar (older versions, by hand) is used, with a warning
    (cache.parent / 'skel.npy.json').unlink()
    with pytest.warns(UserWarning, match='cannot be checked'):
        SkeletonPriorDataset(num_samples=64, seed=2, cache_file=str(cache))


@pytest.mark.parametrize('content', ['shape', 'dtype', 'nan', 'garbage', 'pickle'])
def test_bad_cache_files(tmp_path, content):
    path = tmp_path / 'bad.npy'
    if content == 'shape':
        np.save(path, np.zeros((8, 16, 3), np.float32))
    elif content == 'dtype':
        np.save(path, np.zeros((8, 17, 3), np.float64))
    elif content == 'nan':
        np.save(path, np.full((8, 17, 3), np.nan, np.float32))
    elif content == 'pickle':
        np.save(path, np.array([{'a': 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(b'not a numpy file')
    with pytest.raises(ValueError, match='bad.npy'):
        SkeletonPriorDataset(num_samples=8, cache_file=str(path))


def test_rotate_by_euler_equals_the_matrix_product():
    from liftedcl_mm.datasets.skeleton_prior import euler_to_matrix, rotate_by_euler
    rng = np.random.default_rng(3)
    angles = rng.uniform(-180, 180, size=(50, 16, 3))
    vectors = rng.normal(size=(16, 3))
    expected = (euler_to_matrix(angles) @ vectors[:, :, None])[..., 0]
    np.testing.assert_allclose(rotate_by_euler(angles, vectors), expected, atol=1e-12)


def test_chunked_assembly_does_not_depend_on_the_chunk_size():
    from liftedcl_mm.datasets.skeleton_prior import build_skeletons, draw_skeleton_params
    params = draw_skeleton_params(1000, np.random.default_rng(5))
    whole, info = build_skeletons(**params, return_info=True, chunk_size=1000)
    for chunk in (1, 7, 333):
        part, part_info = build_skeletons(**params, return_info=True, chunk_size=chunk)
        np.testing.assert_array_equal(part, whole)
        np.testing.assert_array_equal(part_info['raw'], info['raw'])


# --- Skeletons from a file -------------------------------------------------------------------


@pytest.mark.parametrize('axis', ['+x', '-x', '+y', '-y', '+z', '-z'])
def test_up_axis_rotation_is_proper(axis):
    rot = up_axis_rotation(axis)
    up = {'x': 0, 'y': 1, 'z': 2}[axis[1]]
    vec = np.zeros(3)
    vec[up] = 1.0 if axis[0] == '+' else -1.0
    np.testing.assert_allclose(rot @ vec, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)  # a rotation, never a mirror
    with pytest.raises(ValueError, match='up_axis'):
        up_axis_rotation('up')


def _file_prior(num=20, seed=4):
    """Our skeletons expressed in a -Y-up frame (x, y, z) -> (x, -z, y), scaled and shifted."""
    ours = sample_skeletons(num, seed=seed).astype(np.float64)
    theirs = np.stack([ours[..., 0], -ours[..., 2], ours[..., 1]], -1)
    return ours, 250.0 * theirs + np.array([3.0, -1.0, 7.0])


def test_load_files_in_every_format(tmp_path):
    ours, theirs = _file_prior()
    np.save(tmp_path / 'a.npy', theirs.astype(np.float32))
    np.savez(tmp_path / 'b.npz', joints=theirs)
    np.savez(tmp_path / 'c.npz', joints=theirs, other=np.zeros(3))
    torch.save(torch.from_numpy(theirs).float(), tmp_path / 'd.pt')
    torch.save({'joints': torch.from_numpy(theirs)}, tmp_path / 'e.pth')
    for name, key in (('a.npy', None), ('b.npz', None), ('c.npz', 'joints'), ('d.pt', None),
                      ('e.pth', None)):
        got = load_skeleton_file(str(tmp_path / name), up_axis='-y', key=key)
        assert got.dtype == np.float32 and got.shape == (20, 17, 3)
        # Back in our frame: root at the origin, unit norm, the same skeletons.
        np.testing.assert_allclose(got, ours, atol=2e-6)
    with pytest.raises(ValueError, match='c.npz.*skeleton_key'):
        load_skeleton_file(str(tmp_path / 'c.npz'), up_axis='-y')
    with pytest.raises(ValueError, match='c.npz.*missing'):
        load_skeleton_file(str(tmp_path / 'c.npz'), up_axis='-y', key='missing')
    # Read with the wrong up axis: a rotation of ours, still right-handed, but lying down.
    lying = load_skeleton_file(str(tmp_path / 'a.npy'), up_axis='+z')
    stats = prior_statistics(lying, up_axis='-y')
    assert stats['handedness'] == 1.0
    assert prior_statistics(lying, up_axis='+z')['trunk_tilt_median'] > 80


@needs_authors_prior
def test_authors_prior_converted_meets_every_target():
    raw = torch.load(AUTHORS_PRIOR, weights_only=True).numpy()
    joints = load_skeleton_file(AUTHORS_PRIOR, up_axis='-y')
    assert joints.shape == (5000, 17, 3)
    np.testing.assert_allclose(joints[:, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(joints.reshape(5000, -1), axis=1), 1, atol=1e-5)
    # The conversion is the quarter turn (x, y, z) -> (x, z, -y): a proper rotation.
    np.testing.assert_allclose(joints, np.stack([raw[..., 0], raw[..., 2], -raw[..., 1]], -1),
                               atol=1e-6)
    rows = check_prior_statistics(prior_statistics(joints, up_axis='+z'))
    assert all(r['passed'] for r in rows), format_statistics(rows)
    # Measured in the file's own frame (up -Y) the statistics are the same.
    assert prior_statistics(raw, up_axis='-y') == pytest.approx(
        prior_statistics(joints, up_axis='+z'), rel=1e-4, abs=1e-6)


@needs_authors_prior
def test_authors_prior_fails_when_mirrored_or_knees_forward():
    joints = load_skeleton_file(AUTHORS_PRIOR, up_axis='-y').astype(np.float64)
    mirrored = joints * [-1.0, 1.0, 1.0]
    rows = {r['key']: r['passed'] for r in check_prior_statistics(prior_statistics(mirrored))}
    assert not rows['handedness']
    # Knees bent forward: turn each shin half a turn about its thigh (foot in front of the knee).
    forward = joints.copy()
    for hip, knee, foot in ((1, 2, 3), (4, 5, 6)):
        axis = forward[:, knee] - forward[:, hip]
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        shin = forward[:, foot] - forward[:, knee]
        forward[:, foot] = forward[:, knee] + 2 * (shin * axis).sum(1, keepdims=True) * axis - shin
    stats = prior_statistics(forward)
    rows = {r['key']: r['passed'] for r in check_prior_statistics(stats)}
    assert not rows['knee_wrong_way'] and stats['knee_wrong_way'] > 0.95
    assert rows['handedness'] and rows['knee_flexion_median']  # only the knee row fails


@pytest.mark.parametrize('content', ['shape', 'joints', 'nan', 'garbage', 'pickle', 'unsafe_pt',
                                     'list_pt', 'strings', 'missing', 'extension', 'empty'])
def test_bad_skeleton_files(tmp_path, content):
    path = tmp_path / 'bad.npy'
    if content == 'shape':
        np.save(path, np.zeros((8, 17 * 3), np.float32))
    elif content == 'joints':
        np.save(path, np.ones((8, 16, 3), np.float32))
    elif content == 'nan':
        arr = np.ones((8, 17, 3), np.float32)
        arr[3, 4, 1] = np.inf
        np.save(path, arr)
    elif content == 'pickle':
        np.save(path, np.array([{'a': 1}], dtype=object), allow_pickle=True)
    elif content == 'unsafe_pt':
        path = tmp_path / 'bad.pt'

        class Evil:
            def __reduce__(self):
                return (print, ('pickled code ran',))

        with open(path, 'wb') as f:
            pickle.dump(Evil(), f, protocol=2)
    elif content == 'list_pt':
        path = tmp_path / 'bad.pt'
        torch.save([torch.zeros(2, 17, 3)], path)
    elif content == 'strings':
        np.save(path, np.full((2, 17, 3), 'a'))
    elif content == 'missing':
        path = tmp_path / 'bad.npy'
    elif content == 'extension':
        path = tmp_path / 'bad.txt'
        path.write_text('1 2 3')
    elif content == 'empty':
        np.save(path, np.zeros((2, 17, 3), np.float32))  # all joints at one point
    else:
        path.write_bytes(b'not a numpy file')
    with pytest.raises(ValueError, match='bad\\.'):
        load_skeleton_file(str(path), up_axis='-y')
    with pytest.raises(ValueError, match='bad\\.'):
        SkeletonPriorDataset(skeleton_file=str(path), num_samples=None)


def test_dataset_from_file(tmp_path):
    ours, theirs = _file_prior(num=30)
    path = tmp_path / 'prior.npz'
    np.savez(path, theirs)
    ds = DATASETS.build(dict(type='SkeletonPriorDataset', skeleton_file=str(path),
                             up_axis='-y', num_samples=None))
    assert len(ds) == 30 and ds.skeletons.dtype == np.float32
    np.testing.assert_allclose(ds[7]['joints'], ours[7], atol=2e-6)  # no yaw added by default
    assert 'prior.npz' in repr(ds)
    first = SkeletonPriorDataset(skeleton_file=str(path), up_axis='-y', num_samples=10)
    np.testing.assert_array_equal(first.skeletons, ds.skeletons[:10])
    # Opt-in yaw: a rotation about +Z of each skeleton (heights and norms unchanged).
    yawed = SkeletonPriorDataset(skeleton_file=str(path), up_axis='-y', num_samples=None,
                                 rotate_vertical=True, seed=3)
    assert not np.allclose(yawed.skeletons, ds.skeletons, atol=1e-3)
    np.testing.assert_allclose(yawed.skeletons[..., 2], ds.skeletons[..., 2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(yawed.skeletons[..., :2], axis=-1),
                               np.linalg.norm(ds.skeletons[..., :2], axis=-1), atol=1e-6)
    with pytest.raises(ValueError, match='prior.npz.*fewer'):
        SkeletonPriorDataset(skeleton_file=str(path), up_axis='-y', num_samples=31)
    with pytest.raises(ValueError, match='cache_file'):
        SkeletonPriorDataset(skeleton_file=str(path), cache_file=str(tmp_path / 'c.npy'))
    with pytest.raises(ValueError, match='up_axis'):
        SkeletonPriorDataset(num_samples=5, up_axis='-y')  # sampling is always +Z up
    with pytest.raises(ValueError, match='num_samples'):
        SkeletonPriorDataset(num_samples=None)


@needs_authors_prior
def test_authors_prior_config_builds_from_a_copy(tmp_path, monkeypatch):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'liftedcl_r50_coco_authors-prior.py'))
    base = Config.fromfile(osp.join(ROOT, 'configs', 'liftedcl_r50_coco.py'))
    prior = cfg.model.prior
    assert prior.type == 'SkeletonPriorDataset' and prior.up_axis == '-y'
    assert not osp.isabs(prior.skeleton_file) and 'shared' not in prior.skeleton_file
    # Only the prior differs from the inherited config.
    assert {k: v for k, v in cfg.model.items() if k != 'prior'} == \
        {k: v for k, v in base.model.items() if k != 'prior'}
    assert cfg.train_dataloader == base.train_dataloader
    dst = tmp_path / prior.skeleton_file
    dst.parent.mkdir(parents=True)
    shutil.copy(AUTHORS_PRIOR, dst)
    monkeypatch.chdir(tmp_path)
    ds = DATASETS.build(prior)
    assert len(ds) == 5000 and ds.skeletons.shape == (5000, 17, 3)
    np.testing.assert_array_equal(ds.skeletons, load_skeleton_file(AUTHORS_PRIOR, '-y'))


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600)])
def test_cache_file_mode_follows_umask(tmp_path, umask, mode):
    from liftedcl_mm.datasets.skeleton_prior import save_npy_atomic
    from liftedcl_mm.testing.reliability import umask as umask_set
    with umask_set(umask):
        save_npy_atomic(str(tmp_path / 'skel.npy'), np.zeros((2, 17, 3), np.float32))
    assert (tmp_path / 'skel.npy').stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ['skel.npy']  # no temporary file left
