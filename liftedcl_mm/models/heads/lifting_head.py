"""Lifting network of LiftedCL: pooled features -> 3D skeleton."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from liftedcl_mm.registry import MODELS


class ResidualFCBlock(nn.Module):
    """``act(x + norm(fc(act(norm(fc(x))))))``, the fully connected residual block.

    The authors' block (``act(x + fc(act(fc(x))))``, activation after the sum), shared by
    the lifting network and the KCS discriminator (paper Fig. 4). The optional norm layers
    are ours (the authors have none); they sit after each linear, before the activation and,
    for the second one, before the sum (as in a ResNet basic block).

    Args:
        channels (int): Width of the block.
        act_cfg (dict): Activation config, e.g. ``dict(type='LeakyReLU', negative_slope=0.2)``.
        norm_cfg (dict, optional): 1D norm config, e.g. ``dict(type='BN1d')``; None for none.
    """

    def __init__(self, channels: int, act_cfg: dict, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        layers = []
        for i in range(2):
            layers.append(nn.Linear(channels, channels))
            if norm_cfg is not None:
                layers.append(build_norm_layer(norm_cfg, channels)[1])
            if i == 0:
                layers.append(build_activation_layer(act_cfg))
        # Parameter names (layers.0/layers.2 without norm) are those of the earlier
        # `x + act(...)` block, so its checkpoints still load (they compute differently).
        self.layers = nn.Sequential(*layers)
        self.act = build_activation_layer(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (torch.Tensor): (N, channels). Returns: (N, channels)."""
        return self.act(x + self.layers(x))


def normalize_skeletons(joints: torch.Tensor, root_index: int = 0,
                        eps: float = 1e-6) -> torch.Tensor:
    """The prior's normalisation: root joint at the origin, then unit Frobenius norm.

    Args:
        joints (torch.Tensor): Skeletons of shape (N, J, 3).
        root_index (int): Joint moved to the origin. Defaults to 0 (H36M pelvis).
        eps (float): Floor of the norm (an all-zero skeleton stays zero). Defaults to 1e-6.

    Returns:
        torch.Tensor: (N, J, 3), each of Frobenius norm 1 (or 0).
    """
    joints = joints - joints[:, root_index:root_index + 1]
    norm = joints.flatten(1).norm(dim=1).clamp(min=eps)
    return joints / norm[:, None, None]


@MODELS.register_module()
class LiftingHead(BaseModule):
    """Global average pool -> Linear -> residual FC blocks -> Linear to ``(N, J, 3)``.

    The authors' network (Linear 2048->512, one ``ResidualFCBlock``, Linear 512->51,
    LeakyReLU(0.2), no normalisation layers), with one difference by default: ``normalize``
    gives the output the prior's normalisation (root at the origin, unit Frobenius norm).
    The authors feed the raw output to the discriminator; since every prior skeleton has
    norm 1, the scale alone then tells lifted from real, and with random initialisation
    at lr 0.03 the unbounded scores overflow within a few iterations (measured on ResNet-50).
    ``normalize=False`` reproduces the authors' raw output.

    Args:
        in_channels (int): Channels of the backbone map. Defaults to 2048.
        hid_channels (int): Width of the residual blocks. Defaults to 512.
        num_blocks (int): Number of residual blocks. Defaults to 1.
        num_joints (int): Joints ``J`` of the lifted skeleton. Defaults to 17.
        normalize (bool): Move joint ``root_index`` to the origin and divide each skeleton
            by its Frobenius norm, like the prior's skeletons. Defaults to True.
        root_index (int): Root joint for ``normalize``. Defaults to 0 (H36M pelvis).
        act_cfg (dict): Activation. Defaults to ``dict(type='LeakyReLU', negative_slope=0.2)``.
        norm_cfg (dict, optional): 1D norm in the blocks, e.g. ``dict(type='BN1d')``.
            Defaults to None.
        eps (float): Floor of the norm when ``normalize``. Defaults to 1e-6.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 hid_channels: int = 512,
                 num_blocks: int = 1,
                 num_joints: int = 17,
                 normalize: bool = True,
                 root_index: int = 0,
                 act_cfg: dict = dict(type='LeakyReLU', negative_slope=0.2),
                 norm_cfg: Optional[dict] = None,
                 eps: float = 1e-6,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels), ('hid_channels', hid_channels),
                            ('num_joints', num_joints)):
            if int(value) < 1:
                raise ValueError(f'{name} must be a positive integer, got {value}')
        if int(num_blocks) < 0:
            raise ValueError(f'num_blocks must be >= 0, got {num_blocks}')
        if not 0 <= int(root_index) < int(num_joints):
            raise ValueError(f'root_index must be in [0, {num_joints}), got {root_index}')
        self.in_channels = int(in_channels)
        self.num_joints = int(num_joints)
        self.normalize = bool(normalize)
        self.root_index = int(root_index)
        self.eps = float(eps)
        self.fc_in = nn.Linear(in_channels, hid_channels)
        self.act = build_activation_layer(act_cfg)
        self.blocks = nn.Sequential(
            *[ResidualFCBlock(hid_channels, act_cfg, norm_cfg) for _ in range(int(num_blocks))])
        self.fc_out = nn.Linear(hid_channels, 3 * self.num_joints)

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Lift features to 3D joints.

        Args:
            x (torch.Tensor | Sequence[torch.Tensor]): Backbone maps (uses the last), shape
                (N, C, H, W), or pooled features (N, C).

        Returns:
            torch.Tensor: Joints of shape (N, J, 3).
        """
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'LiftingHead expects (N, {self.in_channels}, H, W) or '
                             f'(N, {self.in_channels}), got {tuple(x.shape)}')
        x = self.blocks(self.act(self.fc_in(x)))
        joints = self.fc_out(x).view(x.shape[0], self.num_joints, 3)
        if self.normalize:
            joints = normalize_skeletons(joints, self.root_index, self.eps)
        return joints
