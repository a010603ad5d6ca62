import math

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
from liftedcl_mm.models.heads import LiftingHeatmapHead
from liftedcl_mm.models.losses import KinematicPriorLoss
from liftedcl_mm.models.losses.kinematic_prior import joint_angle_ranges, polar_angle_ranges
from liftedcl_mm.registry import MODELS
from liftedcl_mm.skeleton.h36m import H36M_BONES, H36M_TEMPLATE_BONES
from liftedcl_mm.testing.skeletons import joints_from_bones, template_bones

HEAD_BONE = H36M_BONES.index((9, 10))  # neck_base -> head
NECK_BONE = H36M_BONES.index((8, 9))  # thorax -> neck_base
R_THIGH = H36M_BONES.index((1, 2))  # right_hip -> right_knee
R_SHIN = H36M_BONES.index((2, 3))  # right_knee -> right_foot


_from_bones = joints_from_bones
_template = template_bones


def _naive_length_penalty(joints, lo=0.9, hi=1.1):
    lengths = [np.linalg.norm(joints[c] - joints[p]) for p, c in H36M_BONES]
    tmpl = [np.linalg.norm(b) for b in H36M_TEMPLATE_BONES]
    scale = sum(lengths) / sum(tmpl)
    pen = 0.0
    for length, t in zip(lengths, tmpl):
        r = length / (scale * t)
        pen += max(lo / hi - r, 0) ** 2 + max(r - hi / lo, 0) ** 2
    return pen / len(lengths)


def test_zero_on_prior_samples_and_template():
    loss = KinematicPriorLoss(reduction='none', angle_margin=0.0)
    for distributions in (None, 'uniform'):  # the ranges hold over the whole support
        kwargs = {} if distributions is None else dict(distributions=distributions)
        skeletons = torch.from_numpy(sample_skeletons(5000, seed=3, **kwargs))
        length_pen, angle_pen = loss.components(skeletons)
        assert float(length_pen.max()) == 0.0
        assert float(angle_pen.max()) == 0.0
    template = torch.from_numpy(_from_bones(_template())).float()[None]
    assert float(KinematicPriorLoss()(template)) == 0.0
    # any scale and any yaw of a plausible skeleton stays plausible
    yaw = math.radians(70)
    rot = torch.tensor([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                        [0, 0, 1.]])
    assert float(KinematicPriorLoss()(template @ rot.T * 7.5)) == 0.0


def _brute_force_joint_angles(joints):
    """Joint angles (N, 16) in degrees by a naive loop: to the parent bone, or to +Z."""
    out = np.zeros((len(joints), 16))
    for n, skel in enumerate(joints):
        for k, (parent, child) in enumerate(H36M_BONES):
            bone = skel[child] - skel[parent]
            grand = [p for p, c in H36M_BONES if c == parent]
            ref = np.array([0, 0, 1.0]) if not grand else skel[parent] - skel[grand[0]]
            cos = bone @ ref / np.linalg.norm(bone) / np.linalg.norm(ref)
            out[n, k] = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    return out


def test_ranges_are_tight_enough_to_mean_something():
    joint = np.degrees(joint_angle_ranges())
    polar = np.degrees(polar_angle_ranges())
    # The knee flexes 0..150 deg (plus 1 deg of grid slack), a thigh never points upwards.
    assert joint[R_SHIN, 0] == 0 and joint[R_SHIN, 1] == pytest.approx(151.0)
    assert 75 < polar[R_THIGH, 0] < 90
    # Sampled skeletons reach close to the range ends, so the ranges are not loose there.
    angles = _brute_force_joint_angles(sample_skeletons(3000, seed=1, distributions='uniform'))
    assert angles[:, R_SHIN].max() > joint[R_SHIN, 1] - 6
    assert angles[:, HEAD_BONE].max() > joint[HEAD_BONE, 1] - 6
    assert np.all(angles <= joint[:, 1] + 1e-6) and np.all(angles >= joint[:, 0] - 1e-6)


def test_stretched_bone_hand_computed_and_growing():
    loss = KinematicPriorLoss(loss_weight=2.0)
    values = []
    for factor in (1.5, 2.0, 3.0):
        bones = _template()
        bones[R_SHIN] *= factor
        joints = _from_bones(bones)
        value = float(loss(torch.from_numpy(joints).float()[None]))
        values.append(value)
        # by hand: the other 15 bones share r = 1 / s, the shin r = factor / s
        tmpl = np.linalg.norm(_template(), axis=1)
        s = (tmpl.sum() + (factor - 1) * tmpl[R_SHIN]) / tmpl.sum()
        hi, lo = 1.1 / 0.9, 0.9 / 1.1
        expected = (max(factor / s - hi, 0) ** 2 + 15 * max(lo - 1 / s, 0) ** 2) / 16
        assert value == pytest.approx(2.0 * expected, rel=1e-4)
        assert value == pytest.approx(2.0 * _naive_length_penalty(joints), rel=1e-4)
    assert 0 < values[0] < values[1] < values[2]
    # a bone shrunk to 20% of its length
    bones = _template()
    bones[R_SHIN] *= 0.2
    assert float(loss(torch.from_numpy(_from_bones(bones)).float()[None])) > 0


def test_over_bent_joint_hand_computed_and_growing():
    margin = 2.0
    loss = KinematicPriorLoss(angle_margin=margin, length_weight=0.0)
    # Head on the neck (template tilted t0 forward, head template vertical): the head at
    # Rx(a) Ry(b) z makes cos(angle) = cos(b) cos(a + t0) with the neck, so over |a| <= 45,
    # |b| <= 30 the largest angle is acos(cos 30 cos(45 + t0)); the 1-degree grid adds half a
    # step per swept axis (a and b; the spin c is skipped): +1 deg.
    neck = H36M_TEMPLATE_BONES[NECK_BONE]
    t0 = math.degrees(math.atan2(neck[1], neck[2]))
    max_dev = math.degrees(math.acos(math.cos(math.radians(30)) * math.cos(math.radians(45 + t0))))
    assert math.degrees(joint_angle_ranges()[HEAD_BONE, 1]) == pytest.approx(max_dev + 1, abs=1e-6)
    assert math.degrees(polar_angle_ranges()[HEAD_BONE, 1]) > 175  # the polar term stays silent
    values = []
    for tilt in (40.0, 90.0, 140.0, 170.0, -60.0):
        bones = _template()
        length = np.linalg.norm(bones[HEAD_BONE])
        t = math.radians(tilt)
        bones[HEAD_BONE] = length * np.array([0.0, math.sin(t), math.cos(t)])
        value = float(loss(torch.from_numpy(_from_bones(bones)).float()[None]))
        # The head and the neck lie in the same sagittal plane: their angle is |tilt - t0|.
        expected = max(math.radians(abs(tilt - t0)) - math.radians(max_dev + 1 + margin),
                       0) ** 2 / 16
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-9)
        values.append(value)
    assert values[0] == values[1] == 0.0 and 0 < values[2] < values[3]
    assert values[4] > 0  # bent backwards 100 deg from the neck
    # A shin pointing up (knee folded 180 deg) exceeds the knee's 150 (+1) deg.
    bones = _template()
    bones[R_SHIN] *= -1
    expected = (math.pi - math.radians(151 + margin)) ** 2 / 16
    assert float(loss(torch.from_numpy(_from_bones(bones)).float()[None])) == pytest.approx(
        expected, rel=1e-4)
    # A leg pointing up (straight knee): the thigh's joint angle to the hip bone is still 90 deg
    # (allowed), the polar term catches it.
    bones = _template()
    bones[R_THIGH] *= -1
    bones[R_SHIN] *= -1
    lo = polar_angle_ranges()[R_THIGH, 0] - math.radians(margin)
    expected = lo ** 2 / 16  # polar angle 0
    value = float(loss(torch.from_numpy(_from_bones(bones)).float()[None]))
    assert value == pytest.approx(expected, rel=1e-3)


def test_gradient_and_shapes():
    loss = KinematicPriorLoss()
    joints = torch.from_numpy(_from_bones(_template())).float()[None].repeat(3, 1, 1)
    joints[1, 3] += torch.tensor([0.0, 0.0, -400.0])  # stretch the right shin
    joints[2, 10] = joints[2, 9] - torch.tensor([0.0, 0.0, 100.0])  # head pointing down
    joints.requires_grad_(True)
    value = loss(joints)
    value.backward()
    grad = joints.grad
    assert torch.isfinite(grad).all()
    assert grad[0].abs().max() == 0  # plausible skeleton: no gradient
    assert grad[1].abs().max() > 0 and grad[2, 10].abs().max() > 0
    # a gradient step that moves no joint by more than 1 mm reduces the penalty
    with torch.no_grad():
        stepped = joints - grad / grad.abs().max()
    assert float(loss(stepped)) < float(value.detach())
    # degenerate input (all joints equal) stays finite
    zeros = torch.zeros(2, 17, 3, requires_grad=True)
    loss(zeros).backward()
    assert torch.isfinite(zeros.grad).all()
    per_sample = KinematicPriorLoss(reduction='none')(joints.detach())
    assert per_sample.shape == (3, )
    assert float(per_sample.mean()) == pytest.approx(float(value.detach()), rel=1e-6)
    with pytest.raises(ValueError, match=r'\(N, 17, 3\)'):
        loss(torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match='length_range'):
        KinematicPriorLoss(length_range=(1.2, 1.1))


def test_registered_in_both_registries():
    from mmpose.registry import MODELS as MMPOSE_MODELS
    with DefaultScope.overwrite_default_scope('mmpose'):
        loss = MMPOSE_MODELS.build(dict(type='KinematicPriorLoss', loss_weight=0.1))
        head_cls = MMPOSE_MODELS.get('LiftingHeatmapHead')
    assert isinstance(loss, KinematicPriorLoss) and loss.loss_weight == 0.1
    assert head_cls is LiftingHeatmapHead
    with DefaultScope.overwrite_default_scope('liftedcl_mm'):
        assert isinstance(MODELS.build(dict(type='KinematicPriorLoss')), KinematicPriorLoss)


def test_lifting_heatmap_head_losses():
    from mmpose.structures import PoseDataSample
    torch.manual_seed(0)
    cfg = dict(
        type='LiftingHeatmapHead', in_channels=32, out_channels=17,
        deconv_out_channels=(16, ), deconv_kernel_sizes=(4, ),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        lifting_head=dict(type='LiftingHead', hid_channels=24, num_blocks=1, num_joints=17),
        loss_kinematic=dict(type='KinematicPriorLoss', loss_weight=0.5))
    from mmpose.registry import MODELS as MMPOSE_MODELS
    with DefaultScope.overwrite_default_scope('mmpose'):
        head = MMPOSE_MODELS.build(cfg)
    assert head.lifting_head.in_channels == 32
    feats = (torch.randn(2, 32, 4, 3, requires_grad=True), )
    samples = []
    for _ in range(2):
        sample = PoseDataSample()
        sample.gt_fields = PixelData(heatmaps=torch.rand(17, 8, 6))
        sample.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 17))
        samples.append(sample)
    assert head.forward(feats).shape == (2, 17, 8, 6)
    losses = head.loss(feats, samples, train_cfg=dict(compute_acc=True))
    assert {'loss_kpt', 'loss_kinematic', 'acc_pose'} <= set(losses)
    joints = head.lift(feats)
    assert joints.shape == (2, 17, 3)
    expected = 0.5 * KinematicPriorLoss()(joints)
    assert float(losses['loss_kinematic'].detach()) == pytest.approx(float(expected.detach()),
                                                                     rel=1e-6)
    assert float(losses['loss_kinematic'].detach()) > 0  # a random lifting net is implausible
    losses['loss_kinematic'].backward()
    assert head.lifting_head.fc_in.weight.grad.abs().sum() > 0
    assert feats[0].grad.abs().sum() > 0  # the prior reaches the backbone features
