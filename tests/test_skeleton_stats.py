"""Statistics of skeleton priors (liftedcl_mm/skeleton/stats.py) on hand-built skeletons."""
import math

import numpy as np
import pytest

from liftedcl_mm.skeleton import (H36M_BONES, H36M_JOINT_NAMES, H36M_TEMPLATE_BONES,
                                  PRIOR_STAT_TARGETS, check_prior_statistics, format_statistics,
                                  prior_statistics, skeleton_measures, up_vector)
from liftedcl_mm.testing.skeletons import joints_from_bones, template_bones

J = {name: i for i, name in enumerate(H36M_JOINT_NAMES)}
BONE = {H36M_JOINT_NAMES[c]: k for k, (_, c) in enumerate(H36M_BONES)}


def rx(deg):
    t = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])


def ry(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])


def rz(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


build = joints_from_bones
standing = template_bones


def test_standing_template():
    m = skeleton_measures(build(standing())[None])
    assert m['handedness'].tolist() == [True]
    np.testing.assert_allclose(m['knee_flexion'], 0, atol=1e-9)
    np.testing.assert_allclose(m['trunk_tilt'], 0, atol=1e-9)
    np.testing.assert_allclose(m['thigh_angle'], 0, atol=1e-9)
    np.testing.assert_allclose(m['upper_arm_angle'], 0, atol=1e-9)


@pytest.mark.parametrize('hip_flexion', [0.0, 45.0, 90.0])
def test_knee_flexion_and_bend_axis(hip_flexion):
    bones = standing()
    # Right leg: thigh flexed forward at the hip, shin folded back 30 deg from the thigh. Left
    # leg: the same but the shin folded 50 deg FORWARD (a knee bent the wrong way).
    thigh = rx(hip_flexion)
    bones[BONE['right_knee']] = thigh @ bones[BONE['right_knee']]
    bones[BONE['right_foot']] = thigh @ rx(-30) @ bones[BONE['right_foot']]
    bones[BONE['left_knee']] = thigh @ bones[BONE['left_knee']]
    bones[BONE['left_foot']] = thigh @ rx(50) @ bones[BONE['left_foot']]
    m = skeleton_measures(build(bones)[None])
    np.testing.assert_allclose(m['knee_flexion'][0], [30, 50], atol=1e-9)
    assert m['knee_axis_right'][0].tolist() == [False, True]
    np.testing.assert_allclose(m['thigh_angle'][0], [hip_flexion, hip_flexion], atol=1e-9)
    stats = prior_statistics(build(bones)[None])
    assert stats['num_bent_knees'] == 2 and stats['knee_wrong_way'] == 0.5
    assert stats['knee_flexion_median'] == pytest.approx(40)
    assert stats['knee_flexion_std'] == pytest.approx(10)


def test_abducted_and_twisted_hip_keeps_a_backward_knee_on_the_left():
    bones = standing()
    # Right thigh abducted 40 deg (towards +X) and turned outwards 30 deg about itself, knee
    # folded back 60 deg in the thigh's own frame.
    frame = ry(-40) @ rz(-30)
    bones[BONE['right_knee']] = frame @ bones[BONE['right_knee']]
    bones[BONE['right_foot']] = frame @ rx(-60) @ bones[BONE['right_foot']]
    m = skeleton_measures(build(bones)[None])
    assert m['knee_flexion'][0, 0] == pytest.approx(60)
    assert not m['knee_axis_right'][0, 0]
    assert m['thigh_angle'][0, 0] == pytest.approx(40)


def test_trunk_tilt_and_limb_angles_relative_to_the_trunk():
    bones = standing()
    # Lean the upper body 20 deg forward (about X at the root); legs stay vertical.
    lean = rx(-20)
    for name in ('spine', 'thorax', 'neck_base', 'head', 'left_shoulder', 'left_elbow',
                 'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist'):
        bones[BONE[name]] = lean @ bones[BONE[name]]
    # Raise the right arm sideways to horizontal (in the leaned frame): 90 deg from trunk-down.
    bones[BONE['right_elbow']] = lean @ ry(-90) @ H36M_TEMPLATE_BONES[BONE['right_elbow']]
    m = skeleton_measures(build(bones)[None])
    assert m['trunk_tilt'][0] == pytest.approx(20)
    np.testing.assert_allclose(m['thigh_angle'][0], [20, 20], atol=1e-9)
    np.testing.assert_allclose(m['upper_arm_angle'][0], [90, 0], atol=1e-9)
    assert m['handedness'][0]


def test_handedness_invariant_to_rotations_flipped_by_mirrors():
    skel = build(standing())
    rng = np.random.default_rng(0)
    for _ in range(5):  # any rotation keeps a right-handed body right-handed
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        assert skeleton_measures((skel @ q.T)[None])['handedness'][0]
    for axis in range(3):  # any mirror makes it left-handed
        mirrored = skel.copy()
        mirrored[:, axis] *= -1
        assert not skeleton_measures(mirrored[None])['handedness'][0]
    # Swapping the arms' labels alone (hips right) also fails.
    swapped = skel.copy()
    swapped[[11, 12, 13, 14, 15, 16]] = skel[[14, 15, 16, 11, 12, 13]]
    assert not skeleton_measures(swapped[None])['handedness'][0]


def test_up_axis_only_changes_the_trunk_tilt():
    skel = build(standing())
    # The same skeleton in a -Y-up frame: (x, y, z) -> (x, -z, y) (a proper rotation).
    theirs = np.stack([skel[:, 0], -skel[:, 2], skel[:, 1]], -1)
    assert prior_statistics(theirs[None], up_axis='-y') == pytest.approx(
        prior_statistics(skel[None], up_axis='+z'), nan_ok=True)
    assert skeleton_measures(theirs[None], up_axis='+z')['trunk_tilt'][0] == pytest.approx(90)
    np.testing.assert_array_equal(up_vector('-Y'), [0, -1, 0])
    with pytest.raises(ValueError, match='up_axis'):
        up_vector('z')
    with pytest.raises(ValueError, match=r'\(N, 17, 3\)'):
        skeleton_measures(np.zeros((2, 16, 3)))


def test_check_and_format():
    stats = dict(handedness=0.995, knee_wrong_way=0.06, knee_flexion_median=10.0,
                 knee_flexion_std=7.9, trunk_tilt_median=25.0, thigh_angle_median=45.1,
                 thigh_angle_p95=45.0, upper_arm_angle_median=float('nan'))
    rows = check_prior_statistics(stats)
    assert [r['key'] for r in rows] == [t[0] for t in PRIOR_STAT_TARGETS]
    passed = {r['key']: r['passed'] for r in rows}
    assert passed == dict(handedness=True, knee_wrong_way=False, knee_flexion_median=True,
                          knee_flexion_std=False, trunk_tilt_median=True,
                          thigh_angle_median=False, thigh_angle_p95=True,
                          upper_arm_angle_median=False)
    table = format_statistics(rows, title='demo')
    lines = table.splitlines()
    assert lines[0] == 'demo' and len(lines) == 2 + len(rows)
    assert lines[2].endswith('PASS') and '99.5%' in lines[2] and '>= 99.0%' in lines[2]
    assert lines[3].endswith('FAIL') and '6.0%' in lines[3]
    # Every target carries its rationale.
    assert all(len(t) == 6 and len(t[5]) > 20 for t in PRIOR_STAT_TARGETS)
    # No bent knee at all: the share is undefined and fails.
    straight = prior_statistics(build(standing())[None])
    assert math.isnan(straight['knee_wrong_way'])
    assert not {r['key']: r for r in check_prior_statistics(straight)}['knee_wrong_way']['passed']


# ----------------------------------------------------------------------------- plausibility
def _prior(num=200):
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    return sample_skeletons(num, seed=3)


def test_bone_length_ratios_of_the_template():
    from liftedcl_mm.skeleton.stats import bone_length_ratios
    ratios = bone_length_ratios(build(standing())[None])[0]
    lengths = np.linalg.norm(H36M_TEMPLATE_BONES, axis=1)
    np.testing.assert_allclose(ratios, lengths / lengths.sum())
    assert np.isnan(bone_length_ratios(np.zeros((1, 17, 3)))).all()  # no bones, no ratios


def test_plausible_passes_prior_and_template_fails_broken_skeletons():
    from liftedcl_mm.skeleton.stats import bone_ratio_band, plausible
    prior = _prior()
    assert plausible(prior, prior).all()  # every prior skeleton lies in its own band
    # A hand-built upright body with both knees bent 40 deg backwards, scaled and shifted.
    bones = standing()
    bones[BONE['right_foot']] = rx(-40) @ bones[BONE['right_foot']]
    bones[BONE['left_foot']] = rx(-40) @ bones[BONE['left_foot']]
    good = build(bones)
    # A knee bent forward (mirrored hinge): 40 deg the wrong way.
    forward_knee = standing()
    forward_knee[BONE['right_foot']] = rx(40) @ forward_knee[BONE['right_foot']]
    # A 2x-long shin.
    long_shin = bones.copy()
    long_shin[BONE['left_foot']] *= 2.0
    # The whole body mirrored (x -> -x): its bent knees now bend the wrong way.
    mirrored = good * [-1.0, 1.0, 1.0]
    nan = good.copy()
    nan[3, 0] = np.nan
    batch = np.stack([good * 0.003 + 5.0, build(forward_knee), build(long_shin), mirrored, nan,
                      np.zeros((17, 3))])
    assert plausible(batch, prior).tolist() == [True, False, False, False, False, False]
    # A precomputed band gives the same answer; a straight knee never bends the wrong way.
    band = bone_ratio_band(prior)
    assert band.shape == (2, 16) and (band[0] < band[1]).all()
    assert plausible(batch, band).tolist() == plausible(batch, prior).tolist()
    assert plausible(build(standing())[None], band).tolist() == [True]
    # A thigh 30% longer than the template's is out of the band (the prior varies bones +-10%).
    stretched = standing()
    stretched[BONE['right_knee']] *= 1.3
    assert plausible(build(stretched)[None], prior, tolerance=0.1).tolist() == [False]
    with pytest.raises(ValueError, match='tolerance'):
        bone_ratio_band(prior, tolerance=1.5)


def test_plausibility_breakdown_names_the_failing_part():
    from liftedcl_mm.skeleton.stats import plausibility_breakdown
    prior = _prior()
    bones = standing()
    bones[BONE['right_foot']] = rx(-40) @ bones[BONE['right_foot']]
    good = build(bones)
    long_shin = bones.copy()
    long_shin[BONE['left_foot']] *= 2.0
    # the right knee bent forward, the left one backward: no mirror image mends both
    forward_knee = standing()
    forward_knee[BONE['right_foot']] = rx(40) @ forward_knee[BONE['right_foot']]
    forward_knee[BONE['left_foot']] = rx(-40) @ forward_knee[BONE['left_foot']]
    # good, its mirror image, a 2x shin, a knee bent forward (not a mirror: hips unchanged)
    batch = np.stack([good, good * [-1.0, 1.0, 1.0], build(long_shin), build(forward_knee)])
    b = plausibility_breakdown(batch, prior)
    assert b['plausible'] == 0.25 and b['plausible_up_to_mirror'] == 0.5
    assert b['bones_in_band'] == 0.75  # only the long shin fails the band
    assert b['knees_ok'] == 0.5  # the mirror image and the forward knee
    assert b['handedness'] == 0.75  # only the mirror image
    # spread: the prior against itself is 1; one pose repeated (a collapsed generator) is 0
    assert plausibility_breakdown(prior, prior)['spread'] == pytest.approx(1.0)
    assert plausibility_breakdown(np.repeat(good[None], 5, 0), prior)['spread'] == 0.0
