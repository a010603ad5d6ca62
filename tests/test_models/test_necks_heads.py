import pytest
import torch

from liftedcl_mm.models.heads import LiftingHead, ResidualFCBlock
from liftedcl_mm.models.heads.lifting_head import normalize_skeletons
from liftedcl_mm.models.necks import EquivariantNeck
from liftedcl_mm.registry import DATASETS, MODELS


def test_equivariant_neck_keeps_spatial_size_and_is_per_location():
    torch.manual_seed(0)
    neck = MODELS.build(dict(type='EquivariantNeck', in_channels=8, hid_channels=6,
                             out_channels=4))
    x = torch.randn(2, 8, 5, 3)
    (out, ) = neck((torch.randn(2, 3, 9, 9), x))  # uses the last map
    assert out.shape == (2, 4, 5, 3)
    # A per-location MLP: location (1, 2) only depends on the input at (1, 2).
    vec = x[:, :, 1, 2]
    conv1, conv2 = neck.mlp[0], neck.mlp[2]
    hand = torch.relu(vec @ conv1.weight[:, :, 0, 0].T + conv1.bias)
    hand = hand @ conv2.weight[:, :, 0, 0].T + conv2.bias
    torch.testing.assert_close(out[:, :, 1, 2], hand)
    # Commutes with horizontal flips (needed for view alignment).
    torch.testing.assert_close(neck(x.flip(-1))[0], out.flip(-1))
    pooled = EquivariantNeck(8, 6, 4, with_avg_pool=True)
    pooled.load_state_dict(neck.state_dict())
    torch.testing.assert_close(pooled(x)[0], out.mean(dim=(2, 3)))
    with pytest.raises(ValueError, match='EquivariantNeck'):
        neck(torch.randn(2, 7, 3, 3))


def test_lifting_head_shapes_and_pooling():
    torch.manual_seed(0)
    head = LiftingHead(in_channels=8, hid_channels=16, num_blocks=2, num_joints=17)
    assert len(head.blocks) == 2
    feat = torch.randn(3, 8, 4, 4)
    joints = head((feat, ))
    assert joints.shape == (3, 17, 3)
    # Global average pooling first: the pooled vector gives the same output.
    torch.testing.assert_close(head(feat.mean(dim=(2, 3))), joints)
    with pytest.raises(ValueError, match='LiftingHead'):
        head(torch.randn(3, 9))


def test_lifting_head_normalizes_like_the_prior_by_default():
    torch.manual_seed(0)
    head = LiftingHead(in_channels=8, hid_channels=16, num_joints=17)
    assert head.normalize
    feat = torch.randn(4, 8, 2, 2)
    joints = head(feat)
    # Root (joint 0) at the origin, then unit Frobenius norm, computed here by hand.
    raw = head.fc_out(head.blocks(head.act(head.fc_in(feat.mean(dim=(2, 3)))))).view(4, 17, 3)
    centred = raw - raw[:, :1]
    expected = centred / centred.flatten(1).norm(dim=1)[:, None, None]
    torch.testing.assert_close(joints, expected)
    torch.testing.assert_close(joints[:, 0], torch.zeros(4, 3))
    torch.testing.assert_close(joints.flatten(1).norm(dim=1), torch.ones(4))
    # The output layer's scale and the root's position no longer reach the discriminator.
    with torch.no_grad():
        head.fc_out.weight.mul_(1e3)
        head.fc_out.bias.mul_(1e3).add_(torch.tensor([5.0, -2.0, 1.0]).repeat(17))
    torch.testing.assert_close(head(feat), joints, rtol=1e-4, atol=1e-5)
    # eps-safe on an all-zero output.
    for p in head.fc_out.parameters():
        torch.nn.init.zeros_(p)
    zero = head(torch.randn(2, 8, 2, 2))
    assert torch.isfinite(zero).all() and (zero == 0).all()
    with pytest.raises(ValueError, match='root_index'):
        LiftingHead(in_channels=8, num_joints=17, root_index=17)


def test_lifting_head_normalize_false_is_the_raw_output():
    torch.manual_seed(0)
    head = LiftingHead(in_channels=8, hid_channels=16, num_joints=17, normalize=False)
    feat = torch.randn(3, 8)
    raw = head.fc_out(head.blocks(head.act(head.fc_in(feat)))).view(3, 17, 3)
    torch.testing.assert_close(head(feat), raw)


def test_prior_skeletons_are_fixed_points_of_the_lifted_normalisation():
    # What the discriminator sees from both sides has the same normalisation.
    prior = DATASETS.build(dict(type='SkeletonPriorDataset', num_samples=64, seed=3))
    skeletons = torch.as_tensor(prior.skeletons)
    torch.testing.assert_close(normalize_skeletons(skeletons), skeletons, rtol=1e-5, atol=1e-6)


def test_residual_block_is_the_authors_activation_after_the_sum():
    torch.manual_seed(0)
    block = ResidualFCBlock(6, dict(type='LeakyReLU', negative_slope=0.2))
    assert [type(m).__name__ for m in block.layers] == ['Linear', 'LeakyReLU', 'Linear']
    fc1, fc2 = block.layers[0], block.layers[2]
    x = torch.randn(5, 6)

    def act(v):
        return torch.where(v > 0, v, 0.2 * v)

    expected = act(x + act(x @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias)
    torch.testing.assert_close(block(x), expected)
    # Not the pre-activation form x + act(fc(act(fc(x)))): the two differ for negative sums.
    other = x + act(act(x @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias)
    assert not torch.allclose(block(x), other)


def test_lifting_head_residual_block_and_norm_cfg():
    head = LiftingHead(in_channels=4, hid_channels=8, num_blocks=1, norm_cfg=dict(type='BN1d'),
                       act_cfg=dict(type='ReLU'))
    layers = [type(m).__name__ for m in head.blocks[0].layers]
    assert layers == ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d']
    # The norm sits before the sum and the activation after it: zeroing the last BN's
    # affine leaves act(x).
    block = head.blocks[0]
    x = torch.randn(5, 8)
    block.eval()
    torch.nn.init.zeros_(block.layers[4].weight)
    torch.nn.init.zeros_(block.layers[4].bias)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_lifting_heatmap_head_keeps_the_raw_lifting_output():
    from mmengine.registry import DefaultScope
    from mmpose.registry import MODELS as MMPOSE_MODELS
    cfg = dict(type='LiftingHeatmapHead', in_channels=8, out_channels=17,
               deconv_out_channels=(8, ), deconv_kernel_sizes=(4, ))
    with DefaultScope.overwrite_default_scope('mmpose'):
        head = MMPOSE_MODELS.build(cfg)
        assert head.lifting_head.normalize is False
        head = MMPOSE_MODELS.build(dict(cfg, lifting_head=dict(type='LiftingHead',
                                                               normalize=True)))
        assert head.lifting_head.normalize is True
