import pytest
import torch

from liftedcl_mm.models.heads import LiftingHead
from liftedcl_mm.models.necks import EquivariantNeck
from liftedcl_mm.registry import MODELS


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


def test_lifting_head_normalize_gives_unit_frobenius_norm():
    torch.manual_seed(0)
    head = LiftingHead(in_channels=8, hid_channels=16, num_joints=17, normalize=True)
    joints = head(torch.randn(4, 8, 2, 2))
    norms = joints.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(4))
    # eps-safe on an all-zero output.
    for p in head.fc_out.parameters():
        torch.nn.init.zeros_(p)
    zero = head(torch.randn(2, 8, 2, 2))
    assert torch.isfinite(zero).all() and (zero == 0).all()


def test_lifting_head_residual_block_and_norm_cfg():
    head = LiftingHead(in_channels=4, hid_channels=8, num_blocks=1, norm_cfg=dict(type='BN1d'),
                       act_cfg=dict(type='ReLU'))
    layers = [type(m).__name__ for m in head.blocks[0].layers]
    assert layers == ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d', 'ReLU']
    # Residual: zeroing the block's last linear and BN shift makes it the identity.
    block = head.blocks[0]
    x = torch.randn(5, 8)
    block.eval()
    torch.nn.init.zeros_(block.layers[4].weight)
    torch.nn.init.zeros_(block.layers[4].bias)
    torch.testing.assert_close(block(x), x)
