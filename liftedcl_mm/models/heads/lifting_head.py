"""Lifting network of LiftedCL: pooled features -> 3D skeleton."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from liftedcl_mm.registry import MODELS


class ResidualFCBlock(nn.Module):
    """``x + act(norm(fc(act(norm(fc(x))))))``, the fully connected residual block.

    Shared by the lifting network and the KCS discriminator (paper Fig. 4).

    Args:
        channels (int): Width of the block.
        act_cfg (dict): Activation config, e.g. ``dict(type='LeakyReLU', negative_slope=0.2)``.
        norm_cfg (dict, optional): 1D norm config, e.g. ``dict(type='BN1d')``; None for none.
    """

    def __init__(self, channels: int, act_cfg: dict, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        layers = []
        for _ in range(2):
            layers.append(nn.Linear(channels, channels))
            if norm_cfg is not None:
                layers.append(build_norm_layer(norm_cfg, channels)[1])
            layers.append(build_activation_layer(act_cfg))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (torch.Tensor): (N, channels). Returns: (N, channels)."""
        return x + self.layers(x)


@MODELS.register_module()
class LiftingHead(BaseModule):
    """Global average pool -> Linear -> residual FC blocks -> Linear to ``(N, J, 3)``.

    Follows the authors' network (Linear 2048->512, one residual block, Linear 512->51,
    LeakyReLU(0.2), no normalisation layers); activation and norm are configurable.

    Args:
        in_channels (int): Channels of the backbone map. Defaults to 2048.
        hid_channels (int): Width of the residual blocks. Defaults to 512.
        num_blocks (int): Number of residual blocks. Defaults to 1.
        num_joints (int): Joints ``J`` of the lifted skeleton. Defaults to 17.
        normalize (bool): Divide each skeleton by its Frobenius norm (like the prior's
            skeletons). The authors do not. Defaults to False.
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
                 normalize: bool = False,
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
        self.in_channels = int(in_channels)
        self.num_joints = int(num_joints)
        self.normalize = normalize
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
            norm = joints.flatten(1).norm(dim=1).clamp(min=self.eps)
            joints = joints / norm[:, None, None]
        return joints
