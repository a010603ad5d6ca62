import numpy as np
import pytest
import torch

from liftedcl_mm.models.heads import KCSDiscriminator
from liftedcl_mm.models.utils import kcs
from liftedcl_mm.skeleton import H36M_BONES

# H36M-17 parents written out by hand (MMPose order): root, r-hip, r-knee, r-foot, l-hip,
# l-knee, l-foot, spine, thorax, neck, head, l-shoulder, l-elbow, l-wrist, r-shoulder,
# r-elbow, r-wrist.
HAND_PARENTS = {1: 0, 2: 1, 3: 2, 4: 0, 5: 4, 6: 5, 7: 0, 8: 7, 9: 8, 10: 9, 11: 8, 12: 11,
                13: 12, 14: 8, 15: 14, 16: 15}


def _hand_bone_vectors(joints):
    # Bone k ends at joint k + 1 (children in order), vector = child - parent.
    return np.stack([joints[child] - joints[HAND_PARENTS[child]] for child in range(1, 17)])


def test_kcs_matches_hand_computed_gram_matrix():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(17, 3))
    bones = _hand_bone_vectors(joints)
    expected = np.zeros((16, 16))
    for a in range(16):
        for b in range(16):
            expected[a, b] = sum(bones[a][d] * bones[b][d] for d in range(3))
    psi = kcs(torch.tensor(joints[None], dtype=torch.float64))
    assert psi.shape == (1, 16, 16)
    np.testing.assert_allclose(psi[0].numpy(), expected, rtol=1e-10, atol=1e-12)


def test_kcs_diagonal_is_squared_bone_lengths_and_bone_count():
    assert len(H36M_BONES) == 16
    # A T-pose-like skeleton with known bone lengths.
    joints = np.zeros((17, 3))
    joints[1] = [-1, 0, 0]      # r-hip: length 1
    joints[2] = [-1, 0, -4]     # r-knee: 4
    joints[3] = [-1, 0, -8]     # r-foot: 4
    joints[4] = [1, 0, 0]       # l-hip: 1
    joints[5] = [1, 0, -4]
    joints[6] = [1, 0, -8]
    joints[7] = [0, 0, 2]       # spine: 2
    joints[8] = [0, 0, 5]       # thorax: 3
    joints[9] = [0, 0, 6]       # neck: 1
    joints[10] = [0, 0, 8]      # head: 2
    joints[11] = [2, 0, 5]      # l-shoulder: 2
    joints[12] = [5, 0, 5]      # l-elbow: 3
    joints[13] = [7, 0, 5]      # l-wrist: 2
    joints[14] = [-2, 0, 5]
    joints[15] = [-5, 0, 5]
    joints[16] = [-7, 0, 5]
    lengths = np.array([1, 4, 4, 1, 4, 4, 2, 3, 1, 2, 2, 3, 2, 2, 3, 2], dtype=np.float64)
    psi = kcs(torch.tensor(joints[None]))[0].numpy()
    np.testing.assert_allclose(np.diag(psi), lengths**2)
    # Left upper arm (bone 11: 11->12) and right upper arm (bone 14: 14->15) are opposite.
    assert psi[11, 14] == pytest.approx(-9.0)
    # Thigh and shin of the same leg are parallel: 4 * 4.
    assert psi[1, 2] == pytest.approx(16.0)


def test_kcs_rejects_bad_shape():
    with pytest.raises(ValueError, match='joints'):
        kcs(torch.zeros(2, 17, 2))


def test_kcs_discriminator_uses_upper_triangle_and_is_per_sample():
    torch.manual_seed(0)
    disc = KCSDiscriminator(num_joints=17, hid_channels=8, num_blocks=2)
    assert disc.kcs_branch[0].in_features == 16 * 17 // 2
    x = torch.randn(5, 17, 3)
    out = disc(x)
    assert out.shape == (5, 1)
    # No batch-coupled layers: scoring one sample alone gives the same score.
    torch.testing.assert_close(disc(x[2:3]), out[2:3])
    # The score depends on bone geometry only through Psi and on the raw joints: a global
    # rotation leaves Psi unchanged (checked on the KCS itself).
    rot = torch.tensor([[0., -1., 0.], [1., 0., 0.], [0., 0., 1.]])
    torch.testing.assert_close(kcs(x @ rot.T), kcs(x), rtol=1e-5, atol=1e-5)
    full = KCSDiscriminator(num_joints=17, hid_channels=8, kcs_upper=False)
    assert full.kcs_branch[0].in_features == 256
    with pytest.raises(ValueError, match='joints'):
        disc(torch.randn(2, 16, 3))


def test_kcs_discriminator_layer_sizes_are_the_authors():
    disc = KCSDiscriminator()  # defaults
    linears = {name: (m.in_features, m.out_features) for name, m in disc.named_modules()
               if isinstance(m, torch.nn.Linear)}
    assert linears == {
        'pose_branch.0': (51, 256),
        'pose_branch.2.layers.0': (256, 256), 'pose_branch.2.layers.2': (256, 256),
        'kcs_branch.0': (136, 256),  # upper triangle of the 16 x 16 Psi
        'kcs_branch.2.layers.0': (256, 256), 'kcs_branch.2.layers.2': (256, 256),
        'fuse.0': (512, 128), 'fuse.2': (128, 1)}
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in disc.modules())
    narrow = KCSDiscriminator(hid_channels=8, fuse_channels=5)
    assert (narrow.fuse[0].in_features, narrow.fuse[0].out_features) == (16, 5)
    assert narrow.fuse[2].in_features == 5
    with pytest.raises(ValueError, match='fuse_channels'):
        KCSDiscriminator(fuse_channels=0)


@pytest.mark.parametrize('kcs_scale', [1.0, 50.0])
def test_kcs_discriminator_forward_by_hand(kcs_scale):
    torch.manual_seed(0)
    disc = KCSDiscriminator(hid_channels=6, fuse_channels=4, num_blocks=1, kcs_scale=kcs_scale)
    x = torch.randn(3, 17, 3)

    def act(v):
        return torch.where(v > 0, v, 0.2 * v)

    def lin(m, v):
        return v @ m.weight.T + m.bias

    def branch(seq, v):
        h = act(lin(seq[0], v))
        block = seq[2].layers
        return act(h + lin(block[2], act(lin(block[0], h))))

    psi = kcs(x) * kcs_scale  # only the KCS branch's input is scaled
    rows, cols = torch.triu_indices(16, 16)
    feat = torch.cat([branch(disc.pose_branch, x.flatten(1)),
                      branch(disc.kcs_branch, psi[:, rows, cols])], dim=1)
    expected = lin(disc.fuse[2], act(lin(disc.fuse[0], feat)))
    torch.testing.assert_close(disc(x), expected, rtol=1e-5, atol=1e-6)


def test_kcs_scale_must_be_positive():
    with pytest.raises(ValueError, match='kcs_scale'):
        KCSDiscriminator(kcs_scale=0.0)


def test_standardized_inputs_use_the_prior_statistics():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    prior = torch.as_tensor(sample_skeletons(300, seed=0), dtype=torch.float32)
    torch.manual_seed(0)
    disc = KCSDiscriminator(hid_channels=8, standardize=True)
    x = prior[:5]
    with pytest.raises(RuntimeError, match='set_input_statistics'):
        disc(x)  # statistics not set yet
    disc.set_input_statistics(prior)
    # independently: per-feature mean / std of the flattened joints and of the upper triangle
    rows, cols = torch.triu_indices(16, 16)
    psi = kcs(prior)[:, rows, cols]
    torch.testing.assert_close(disc.kcs_mean, psi.mean(0))
    torch.testing.assert_close(disc.kcs_std, psi.std(0))
    torch.testing.assert_close(disc.pose_mean, prior.flatten(1).mean(0))
    # the branches see standardised inputs: the same network fed them by hand agrees
    plain = KCSDiscriminator(hid_channels=8)
    plain.load_state_dict({k: v for k, v in disc.state_dict().items()
                           if k not in ('pose_mean', 'pose_std', 'kcs_mean', 'kcs_std')})
    pose = (x.flatten(1) - disc.pose_mean) / disc.pose_std
    feat = torch.cat([plain.pose_branch(pose),
                      plain.kcs_branch((kcs(x)[:, rows, cols] - psi.mean(0)) / psi.std(0))], 1)
    torch.testing.assert_close(disc(x), plain.fuse(feat))
    # checkpointed: a fresh discriminator loading the state dict scores the same
    fresh = KCSDiscriminator(hid_channels=8, standardize=True)
    fresh.load_state_dict(disc.state_dict())
    torch.testing.assert_close(fresh(x), disc(x))
    with pytest.raises(RuntimeError, match='standardize=True'):
        plain.set_input_statistics(prior)
    with pytest.raises(ValueError, match='shape'):
        disc.set_input_statistics(prior[:1])


def test_minibatch_std_appends_each_groups_feature_spread():
    torch.manual_seed(0)
    disc = KCSDiscriminator(hid_channels=6, fuse_channels=4, minibatch_std_group=4)
    assert disc.fuse[0].in_features == 2 * 6 + 1
    x = torch.randn(9, 17, 3)
    rows, cols = torch.triu_indices(16, 16)
    feat = torch.cat([disc.pose_branch(x.flatten(1)),
                      disc.kcs_branch(kcs(x)[:, rows, cols])], dim=1)
    # by hand: groups {0..3}, {4..7}, and the lone last sample joins the second: {4..8}
    spread = torch.empty(9, 1)
    for members in (range(0, 4), range(4, 9)):
        group = feat[list(members)]
        std = ((group - group.mean(0)).square().mean(0) + 1e-8).sqrt().mean()
        for i in members:
            spread[i] = std
    expected = disc.fuse(torch.cat([feat, spread], dim=1))
    torch.testing.assert_close(disc(x), expected, rtol=1e-5, atol=1e-6)
    # a group of identical skeletons has no spread: D sees a collapsed generator
    same = disc(x[:1].expand(4, 17, 3))
    group_feat = torch.cat([disc.pose_branch(x[:1].flatten(1)),
                            disc.kcs_branch(kcs(x[:1])[:, rows, cols]), torch.full((1, 1), 1e-4)],
                           dim=1)
    torch.testing.assert_close(same, disc.fuse(group_feat).expand(4, 1))
    # per group: scoring a batch of two groups = scoring each group alone
    torch.testing.assert_close(disc(x[:8]), torch.cat([disc(x[:4]), disc(x[4:8])]))
    with pytest.raises(ValueError, match='minibatch_std_group'):
        KCSDiscriminator(minibatch_std_group=-1)


def _yaw_turned_by_hand(joints):
    # each skeleton turned about +Z by minus the yaw of its hip line (left hip -> right hip)
    out = np.empty_like(joints)
    for i, skel in enumerate(joints):
        hip = skel[1] - skel[4]
        yaw = np.arctan2(hip[1], hip[0])
        rot = np.array([[np.cos(-yaw), -np.sin(-yaw), 0.0],
                        [np.sin(-yaw), np.cos(-yaw), 0.0],
                        [0.0, 0.0, 1.0]])
        out[i] = skel @ rot.T
    return out


def test_canonical_yaw_turns_the_hip_line_to_x_and_ignores_the_viewpoint():
    torch.manual_seed(0)
    disc = KCSDiscriminator(hid_channels=8, canonical_yaw=True)
    x = torch.randn(6, 17, 3, dtype=torch.float64)
    pose, _ = disc.double()._inputs(x)
    np.testing.assert_allclose(pose.view(6, 17, 3).numpy(), _yaw_turned_by_hand(x.numpy()),
                               atol=1e-12)
    # any turn about the up axis leaves the score unchanged (KCS is rotation invariant) ...
    angle = 2.1
    turn = torch.tensor([[np.cos(angle), -np.sin(angle), 0.0],
                         [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(disc(x @ turn.T), disc(x))
    # ... a tilt does not (the pose branch still sees which way is up), nor without the option
    tilt = torch.tensor([[1.0, 0.0, 0.0], [0.0, np.cos(0.5), -np.sin(0.5)],
                         [0.0, np.sin(0.5), np.cos(0.5)]], dtype=torch.float64)
    assert not torch.allclose(disc(x @ tilt.T), disc(x))
    plain = KCSDiscriminator(hid_channels=8).double()
    plain.load_state_dict(disc.state_dict())
    assert not torch.allclose(plain(x @ turn.T), plain(x))
    # a hip line along the up axis has no yaw: that skeleton is left as it is
    upright = x[:1].clone()
    upright[0, 1] = upright[0, 4] + torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64)
    torch.testing.assert_close(disc._inputs(upright)[0], upright.flatten(1))
    with pytest.raises(ValueError, match='hip_joints'):
        KCSDiscriminator(canonical_yaw=True, hip_joints=(1, 17))


def test_std_floor_bounds_how_much_standardising_magnifies_a_feature():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    prior = torch.as_tensor(sample_skeletons(300, seed=0), dtype=torch.float32)
    disc = KCSDiscriminator(hid_channels=8, standardize=True, std_floor=0.5)
    disc.set_input_statistics(prior)
    rows, cols = torch.triu_indices(16, 16)
    for values, std in ((prior.flatten(1), disc.pose_std), (kcs(prior)[:, rows, cols],
                                                            disc.kcs_std)):
        raw = values.std(0)
        expected = torch.maximum(raw, 0.5 * raw.median())
        torch.testing.assert_close(std, expected)
        assert (raw < 0.5 * raw.median()).any()  # the prior has near-constant features
    with pytest.raises(ValueError, match='std_floor needs standardize'):
        KCSDiscriminator(std_floor=0.5)
    with pytest.raises(ValueError, match='std_floor and input_noise'):
        KCSDiscriminator(input_noise=-1.0)


def test_input_noise_is_added_to_both_branches_in_training_only():
    torch.manual_seed(0)
    disc = KCSDiscriminator(hid_channels=8, input_noise=0.3)
    x = torch.randn(4000, 17, 3)
    seen = {}
    for name in ('pose_branch', 'kcs_branch'):
        getattr(disc, name).register_forward_pre_hook(
            lambda module, args, name=name: seen.__setitem__(name, args[0].detach()))
    clean = disc._inputs(x)
    disc.eval()
    torch.testing.assert_close(disc(x), disc(x))
    for name, value in zip(('pose_branch', 'kcs_branch'), clean):
        torch.testing.assert_close(seen[name], value)
    disc.train()
    disc(x)
    for name, value in zip(('pose_branch', 'kcs_branch'), clean):
        noise = seen[name] - value
        assert abs(noise.mean().item()) < 0.01
        assert noise.std().item() == pytest.approx(0.3, rel=0.02)


def _halve_bone(skeletons, parent, child, below):
    """Move ``child`` (and the joints ``below`` it) so that bone parent->child is half as long."""
    out = skeletons.clone()
    shift = 0.5 * (out[:, parent] - out[:, child])
    out[:, [child, *below]] += shift[:, None]
    return out / out.flatten(1).norm(dim=1)[:, None, None]  # unit norm, as the prior's


def test_bone_proportions_are_the_log_shares_of_the_total_bone_length():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    from liftedcl_mm.skeleton.stats import bone_length_ratios
    prior = torch.as_tensor(sample_skeletons(300, seed=0), dtype=torch.float64)
    disc = KCSDiscriminator(hid_channels=8, bone_proportions=True, standardize=True,
                            std_floor=0.5).double()
    plain = KCSDiscriminator(hid_channels=8, standardize=True, std_floor=0.5).double()
    pose, psi = disc._inputs(prior)
    plain_pose, plain_psi = plain._inputs(prior)
    assert psi.shape == (300, 136 + 16) and disc.kcs_branch[0].in_features == 136 + 16
    torch.testing.assert_close(psi[:, :136], plain_psi)  # Psi's entries come first, unchanged
    torch.testing.assert_close(pose, plain_pose)
    # independently (numpy, the plausibility test's own ratios)
    np.testing.assert_allclose(psi[:, 136:].numpy(), np.log(bone_length_ratios(prior.numpy())),
                               atol=1e-6)
    # standardised with the floor taken per group: Psi's part as without the option
    disc.set_input_statistics(prior)
    plain.set_input_statistics(prior)
    torch.testing.assert_close(disc.kcs_std[:136], plain.kcs_std)
    raw = psi[:, 136:].std(0)
    torch.testing.assert_close(disc.kcs_std[136:], torch.maximum(raw, 0.5 * raw.median()))
    # why: a hip bone (pelvis -> right hip, bone 0) at half its length is ~2 floored stds off
    # on Psi's diagonal, and > 10 of the prior's stds off in its log share
    short_hip = _halve_bone(prior[:50], 0, 1, below=[2, 3])
    z = (disc._inputs(short_hip)[1] - disc.kcs_mean) / disc.kcs_std
    z_prior = (disc._inputs(prior[:50])[1] - disc.kcs_mean) / disc.kcs_std
    shift = (z - z_prior).abs().mean(0)
    assert shift[0] < 3  # Psi[0, 0], the first diagonal entry of the upper triangle
    assert shift[136] > 10
    with pytest.raises(AssertionError):  # the shares of the other bones move much less
        assert (shift[137:] > 10).any()
    # a zero-length bone keeps the gradient finite
    x = prior[:2].clone().requires_grad_()
    with torch.no_grad():
        x[:, 1] = x[:, 0]
    disc(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_signed_bends_tell_a_knee_bent_the_wrong_way_and_a_mirror_image():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    from liftedcl_mm.skeleton.stats import skeleton_measures
    prior = torch.as_tensor(sample_skeletons(300, seed=0), dtype=torch.float64)
    disc = KCSDiscriminator(hid_channels=8, signed_bends=True).double()
    both = KCSDiscriminator(hid_channels=8, bone_proportions=True, signed_bends=True).double()
    # pairs of consecutive bones: 13 in the H36M-17 tree (thorax has three children)
    assert len(disc.bend_pairs) == 13 and (1, 2) in disc.bend_pairs and (4, 5) in disc.bend_pairs
    psi = disc._inputs(prior)[1]
    assert psi.shape == (300, 136 + 13) and both._inputs(prior)[1].shape == (300, 136 + 16 + 13)
    torch.testing.assert_close(both._inputs(prior)[1][:, 152:], psi[:, 136:])
    # independently, for the knees (bones 1 -> 2 right, 4 -> 5 left): numpy cross products
    x = prior.numpy()
    right = (x[:, 1] - x[:, 4]) / np.linalg.norm(x[:, 1] - x[:, 4], axis=1, keepdims=True)
    for pair, (hip, knee, foot) in (((1, 2), (1, 2, 3)), ((4, 5), (4, 5, 6))):
        thigh, shin = x[:, knee] - x[:, hip], x[:, foot] - x[:, knee]
        expected = np.einsum('ni,ni->n', np.cross(thigh, shin), right) / (
            np.linalg.norm(thigh, axis=1) * np.linalg.norm(shin, axis=1))
        np.testing.assert_allclose(psi[:, 136 + disc.bend_pairs.index(pair)].numpy(), expected,
                                   atol=1e-6)
    # the sign is the plausibility test's knee direction: > 0 when the bend axis is to the right
    knees = psi[:, [136 + disc.bend_pairs.index(p) for p in ((1, 2), (4, 5))]].numpy()
    measures = skeleton_measures(x)
    bent = measures['knee_flexion'] > 10
    assert bent.sum() > 100
    np.testing.assert_array_equal(knees[bent] > 0, measures['knee_axis_right'][bent])
    assert (knees[bent] < 0).mean() > 0.95  # the prior's bent knees fold the shin backwards
    # a mirror image has the same Psi, and every bend turned the other way
    mirror = disc._inputs(prior * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))[1]
    torch.testing.assert_close(mirror[:, :136], psi[:, :136])
    torch.testing.assert_close(mirror[:, 136:], -psi[:, 136:])
    with pytest.raises(ValueError, match='consecutive bones'):
        KCSDiscriminator(num_joints=4, bones=((0, 1), (2, 3)), signed_bends=True)


def test_extra_inputs_stay_finite_under_autocast():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    prior = torch.as_tensor(sample_skeletons(64, seed=0), dtype=torch.float32)
    disc = KCSDiscriminator(hid_channels=8, standardize=True, std_floor=0.5,
                            bone_proportions=True, signed_bends=True)
    disc.set_input_statistics(prior)
    x = prior[:4].clone()
    x[:, 1] = x[:, 0]  # a zero-length bone
    x.requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        score = disc(x)
    score.float().sum().backward()
    assert torch.isfinite(score.float()).all() and torch.isfinite(x.grad).all()
    extras = disc._inputs(prior[:8])[1][:, 136:]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        extras_amp = disc._inputs(prior[:8])[1][:, 136:]
    assert extras_amp.dtype == torch.float32
    torch.testing.assert_close(extras_amp, extras, atol=0.05, rtol=0.05)
