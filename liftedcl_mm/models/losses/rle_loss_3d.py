"""Residual log-likelihood estimation (RLE) loss for 3D joints (Li et al. 2021)."""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmpose.registry import MODELS as MMPOSE_MODELS
from torch import Tensor

from liftedcl_mm.registry import MODELS


class AffineCouplingFlow(nn.Module):
    """A RealNVP density on R^D: alternating affine coupling layers over a standard normal.

    Layer ``i`` keeps the coordinates where ``masks[i] == 1`` and maps the others as
    ``z = (x - t(x_kept)) * exp(-s(x_kept))``; ``log_prob`` is the normal's log-density of the
    result plus the log-determinant of the maps (``-sum s``).

    Args:
        dim (int): D, the dimension of the modelled vectors. Defaults to 3.
        num_layers (int): Coupling layers; the kept half alternates between layers. Defaults to
            6 (Li et al. 2021: 3 pairs).
        hidden (int): Width of the two hidden layers of each scale/shift network. Defaults to 64.
    """

    def __init__(self, dim: int = 3, num_layers: int = 6, hidden: int = 64) -> None:
        super().__init__()
        half = (dim + 1) // 2
        # for D = 3 this is Li et al.'s [[0, 0, 1], [1, 1, 0]] x 3
        first = torch.tensor([0.] * half + [1.] * (dim - half))
        masks = torch.stack([first if i % 2 == 0 else 1 - first for i in range(num_layers)])
        self.register_buffer('masks', masks)
        self.dim = dim

        def mlp(last: Optional[nn.Module]) -> nn.Sequential:
            layers = [nn.Linear(dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden),
                      nn.LeakyReLU(), nn.Linear(hidden, dim)]
            return nn.Sequential(*(layers + ([last] if last is not None else [])))

        # tanh keeps the log-scales bounded, so exp(-s) cannot overflow early in training
        self.scale_nets = nn.ModuleList([mlp(nn.Tanh()) for _ in range(num_layers)])
        self.shift_nets = nn.ModuleList([mlp(None) for _ in range(num_layers)])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                # near-identity flow at the start (as Li et al. initialise it)
                nn.init.xavier_uniform_(m.weight, gain=0.01)

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of ``x``.

        Args:
            x (Tensor): (M, D) samples.

        Returns:
            Tensor: (M,) log-densities.
        """
        z, log_det = x, x.new_zeros(x.shape[0])
        for i in reversed(range(len(self.masks))):
            keep = self.masks[i]
            kept = z * keep
            s = self.scale_nets[i](kept) * (1 - keep)
            t = self.shift_nets[i](kept) * (1 - keep)
            z = kept + (1 - keep) * (z - t) * torch.exp(-s)
            log_det = log_det - s.sum(dim=1)
        normal = -0.5 * (z ** 2).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi)
        return normal + log_det


@MODELS.register_module()
@MMPOSE_MODELS.register_module()
class RLELoss3D(nn.Module):
    """RLE loss of Li et al. 2021 for (u, v, d) joints, in their residual form.

    With the normalised residual ``e = (mu - y) / sigma`` of each coordinate, the loss of one
    joint sums over its D coordinates ::

        [log sigma - log G(e)] + [log(sigma * sqrt(2 pi)) + |mu - y| / (sqrt(2) sigma)]

    where ``G`` is a learned flow density of the D-dim residual (:class:`AffineCouplingFlow`,
    trained with the network) and the second bracket the Laplace-like base density, term for
    term as in Li et al.'s ``RLELoss3D``. Weighted per joint and summed, divided by the batch size.

    Args:
        dim (int): Coordinates per joint. Defaults to 3.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
        flow (dict, optional): Keyword arguments of :class:`AffineCouplingFlow`.
    """

    def __init__(self, dim: int = 3, loss_weight: float = 1.0,
                 flow: Optional[dict] = None) -> None:
        super().__init__()
        self.dim = dim
        self.loss_weight = loss_weight
        self.flow = AffineCouplingFlow(dim=dim, **(flow or {}))

    def forward(self, pred: Tensor, sigma: Tensor, target: Tensor,
                weight: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): (N, K, D) predicted joints.
            sigma (Tensor): (N, K, D) predicted scales, > 0 (the head's sigmoid output).
            target (Tensor): (N, K, D) target joints.
            weight (Tensor, optional): (N, K) or (N, K, D) joint weights.

        Returns:
            Tensor: Scalar loss.
        """
        if pred.shape != target.shape or pred.shape != sigma.shape or pred.shape[-1] != self.dim:
            raise ValueError(f'RLELoss3D: pred {tuple(pred.shape)}, sigma {tuple(sigma.shape)} '
                             f'and target {tuple(target.shape)} must all be (N, K, {self.dim})')
        num, num_kpt = pred.shape[:2]
        residual = (pred - target) / sigma
        log_g = self.flow.log_prob(residual.reshape(-1, self.dim)).reshape(num, num_kpt, 1)
        flow_term = torch.log(sigma) - log_g
        base_term = (torch.log(sigma * math.sqrt(2 * math.pi)) +
                     (pred - target).abs() / (math.sqrt(2) * sigma))
        loss = flow_term + base_term
        if weight is not None:
            loss = loss * (weight if weight.dim() == 3 else weight.unsqueeze(-1))
        return loss.sum() / max(num, 1) * self.loss_weight
