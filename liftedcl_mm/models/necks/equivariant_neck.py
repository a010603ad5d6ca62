"""Equivariant projector of LiftedCL: a per-location MLP that keeps the feature map."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from liftedcl_mm.registry import MODELS


@MODELS.register_module()
class EquivariantNeck(BaseModule):
    """1x1 conv - ReLU - 1x1 conv on the last backbone feature map (the paper's ``F_equiv``).

    Being a per-location MLP, it commutes with the geometric augmentations (crop, flip), so
    its output can be aligned across views afterwards.

    Args:
        in_channels (int): Channels of the backbone map. Defaults to 2048.
        hid_channels (int): Hidden channels. Defaults to 2048.
        out_channels (int): Output channels. Defaults to 128.
        with_avg_pool (bool): Return globally average-pooled vectors (N, out_channels)
            instead of the map. LiftedCL uses the map (False) and pools it itself for the
            queue. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 hid_channels: int = 2048,
                 out_channels: int = 128,
                 with_avg_pool: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels), ('hid_channels', hid_channels),
                            ('out_channels', out_channels)):
            if int(value) < 1:
                raise ValueError(f'{name} must be a positive integer, got {value}')
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.with_avg_pool = with_avg_pool
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hid_channels, kernel_size=1), nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, out_channels, kernel_size=1))

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Tuple[torch.Tensor]:
        """Project the last feature map.

        Args:
            x (torch.Tensor | Sequence[torch.Tensor]): Backbone maps (uses the last), each of
                shape (N, in_channels, H, W).

        Returns:
            tuple[torch.Tensor]: ``(map,)`` of shape (N, out_channels, H, W), or
            ``(vector,)`` of shape (N, out_channels) when ``with_avg_pool``.
        """
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'EquivariantNeck expects (N, {self.in_channels}, H, W), '
                             f'got {tuple(x.shape)}')
        out = self.mlp(x)
        if self.with_avg_pool:
            out = out.mean(dim=(2, 3))
        return (out, )
