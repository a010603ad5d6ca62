"""3D kinematic prior penalty for fine-tuning (paper Table 9)."""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmpose.registry import MODELS as MMPOSE_MODELS

from liftedcl_mm.registry import MODELS
from liftedcl_mm.skeleton.h36m import (H36M_BONES, H36M_NUM_JOINTS, H36M_ROTATION_LIMITS,
                                       H36M_TEMPLATE_BONES)


def _rotations(angles_deg: np.ndarray) -> np.ndarray:
    """``Rx(a) @ Ry(b) @ Rz(c)`` for angles (..., 3) in degrees (the prior's convention)."""
    a, b, c = np.deg2rad(angles_deg).transpose(-1, *range(angles_deg.ndim - 1))
    one, zero = np.ones_like(a), np.zeros_like(a)
    rx = np.stack([one, zero, zero, zero, np.cos(a), -np.sin(a), zero, np.sin(a), np.cos(a)], -1)
    ry = np.stack([np.cos(b), zero, np.sin(b), zero, one, zero, -np.sin(b), zero, np.cos(b)], -1)
    rz = np.stack([np.cos(c), -np.sin(c), zero, np.sin(c), np.cos(c), zero, zero, zero, one], -1)
    shape = a.shape + (3, 3)
    return rx.reshape(shape) @ ry.reshape(shape) @ rz.reshape(shape)


def polar_angle_ranges(template: np.ndarray = H36M_TEMPLATE_BONES,
                       limits=H36M_ROTATION_LIMITS,
                       steps: int = 37) -> np.ndarray:
    """Range of each bone's angle to the vertical (+Z) axis over the prior's rotation box.

    The prior rotates bone ``k`` by any ``Rx(a) Ry(b) Rz(c)`` inside its limits and then the
    whole skeleton about Z. The angle of a bone to +Z (its polar angle) does not depend on that
    last yaw, so ``[min, max]`` of the polar angle of ``R @ template_k`` over the box is a
    yaw-invariant range that every prior skeleton satisfies. Evaluated on a grid of ``steps``
    values per axis that always includes the box corners and 0.

    Args:
        template (np.ndarray): (b, 3) template bone vectors.
        limits: (b, 3, 2) Euler-angle ranges in degrees.
        steps (int): Grid points per axis.

    Returns:
        np.ndarray: (b, 2) ``[min, max]`` polar angles in radians.
    """
    template = np.asarray(template, dtype=np.float64)
    limits = np.asarray(limits, dtype=np.float64)
    if limits.shape != (template.shape[0], 3, 2):
        raise ValueError(f'limits must have shape ({template.shape[0]}, 3, 2), '
                         f'got {limits.shape}')
    out = np.zeros((template.shape[0], 2))
    for k in range(template.shape[0]):
        axes = []
        for lo, hi in limits[k]:
            grid = np.linspace(lo, hi, steps)
            if lo < 0 < hi:
                grid = np.append(grid, 0.0)
            axes.append(grid)
        angles = np.stack(np.meshgrid(*axes, indexing='ij'), -1).reshape(-1, 3)
        dirs = _rotations(angles) @ (template[k] / np.linalg.norm(template[k]))
        polar = np.arctan2(np.linalg.norm(dirs[:, :2], axis=1), dirs[:, 2])
        out[k] = polar.min(), polar.max()
    return out


@MODELS.register_module()
@MMPOSE_MODELS.register_module()
class KinematicPriorLoss(nn.Module):
    """Penalty on lifted 3D joints that leave the skeleton prior's plausible range.

    Two hinge-squared terms, each 0 inside its range:

    * bone length: with ``L_k`` the length of bone ``k`` and ``T_k`` its template length, the
      skeleton's scale is ``s = sum(L) / sum(T)`` (so the penalty is scale-invariant, like the
      Frobenius-normalised prior); ``r_k = L_k / (s T_k)`` must lie in
      ``[lo / hi, hi / lo]`` for ``length_range = (lo, hi)``. Every prior skeleton
      (``L_k = alpha_k T_k`` up to scale, ``alpha_k in [lo, hi]``) satisfies this exactly, since
      ``s`` is a weighted mean of the ``alpha``.
    * joint angle: the angle of each bone to the vertical axis (+Z up, the prior's frame) must
      lie in the range the prior's per-bone rotation limits allow (see
      :func:`polar_angle_ranges`), widened by ``angle_margin`` degrees. For the limbs, spine and
      head, whose templates are vertical, this is the angle between the bone and its template
      direction against the largest deviation the table allows. It is invariant to the random
      yaw of the prior, so it cannot tell forward from backward bending.

    ``loss = loss_weight * (length_weight * mean_k(len_pen) + angle_weight * mean_k(ang_pen))``,
    with each penalty ``relu(lo - x)^2 + relu(x - hi)^2`` (angles in radians), averaged over
    the batch (``reduction='mean'``).

    Args:
        length_range (tuple[float]): Range of the prior's bone-length factor alpha.
            Defaults to (0.9, 1.1).
        angle_margin (float): Degrees added on both sides of each angle range (the ranges are
            computed on a grid). Defaults to 2.
        length_weight (float): Weight of the bone-length term. Defaults to 1.
        angle_weight (float): Weight of the joint-angle term. Defaults to 1.
        loss_weight (float): Weight of the whole loss. Defaults to 1.
        reduction (str): ``'mean'``, ``'sum'`` over the batch or ``'none'`` for (N,).
        template (np.ndarray, optional): (16, 3) template bones. Defaults to the H36M table.
        limits (optional): (16, 3, 2) rotation limits in degrees. Defaults to the H36M table.
        eps (float): Keeps lengths and angles differentiable at 0. Defaults to 1e-8.
    """

    def __init__(self,
                 length_range: Sequence[float] = (0.9, 1.1),
                 angle_margin: float = 2.0,
                 length_weight: float = 1.0,
                 angle_weight: float = 1.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 template: Optional[np.ndarray] = None,
                 limits=None,
                 eps: float = 1e-8) -> None:
        super().__init__()
        lo, hi = (float(v) for v in length_range)
        if not 0 < lo <= hi:
            raise ValueError(f'length_range must be (lo, hi) with 0 < lo <= hi, '
                             f'got {length_range}')
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        for name, value in (('angle_margin', angle_margin), ('length_weight', length_weight),
                            ('angle_weight', angle_weight), ('loss_weight', loss_weight)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f'{name} must be a finite number >= 0, got {value}')
        template = np.asarray(H36M_TEMPLATE_BONES if template is None else template, np.float64)
        limits = H36M_ROTATION_LIMITS if limits is None else limits
        if template.shape != (len(H36M_BONES), 3):
            raise ValueError(f'template must have shape ({len(H36M_BONES)}, 3), '
                             f'got {template.shape}')
        polar = polar_angle_ranges(template, limits)
        margin = np.deg2rad(angle_margin)
        polar = np.stack([np.maximum(polar[:, 0] - margin, 0.0),
                          np.minimum(polar[:, 1] + margin, np.pi)], axis=1)
        self.length_weight = float(length_weight)
        self.angle_weight = float(angle_weight)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.eps = float(eps)
        self.ratio_range = (lo / hi, hi / lo)
        self.register_buffer('bone_parents', torch.tensor([p for p, _ in H36M_BONES]),
                             persistent=False)
        self.register_buffer('bone_children', torch.tensor([c for _, c in H36M_BONES]),
                             persistent=False)
        self.register_buffer('template_lengths',
                             torch.from_numpy(np.linalg.norm(template, axis=1)).float(),
                             persistent=False)
        self.register_buffer('angle_ranges', torch.from_numpy(polar).float(), persistent=False)

    @staticmethod
    def _hinge_sq(x: torch.Tensor, lo, hi) -> torch.Tensor:
        return torch.relu(lo - x).pow(2) + torch.relu(x - hi).pow(2)

    def components(self, joints: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-skeleton bone-length and joint-angle penalties, each (N,).

        Args:
            joints (torch.Tensor): (N, 17, 3) joints in H36M order, +Z up.
        """
        if joints.dim() != 3 or joints.shape[1:] != (H36M_NUM_JOINTS, 3):
            raise ValueError(f'KinematicPriorLoss expects joints of shape (N, '
                             f'{H36M_NUM_JOINTS}, 3), got {tuple(joints.shape)}')
        bones = joints[:, self.bone_children] - joints[:, self.bone_parents]  # (N, b, 3)
        lengths = (bones.pow(2).sum(-1) + self.eps).sqrt()  # (N, b)
        tmpl = self.template_lengths.to(joints.dtype)
        scale = lengths.sum(1, keepdim=True) / tmpl.sum()
        ratio = lengths / (scale * tmpl)
        len_pen = self._hinge_sq(ratio, *self.ratio_range).mean(1)

        horizontal = (bones[..., :2].pow(2).sum(-1) + self.eps).sqrt()
        polar = torch.atan2(horizontal, bones[..., 2])  # (N, b) in [0, pi]
        ranges = self.angle_ranges.to(joints.dtype)
        ang_pen = self._hinge_sq(polar, ranges[:, 0], ranges[:, 1]).mean(1)
        return len_pen, ang_pen

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        """Args: joints (torch.Tensor): (N, 17, 3). Returns: scalar (or (N,) for 'none')."""
        len_pen, ang_pen = self.components(joints)
        loss = self.length_weight * len_pen + self.angle_weight * ang_pen
        if self.reduction == 'mean':
            loss = loss.mean()
        elif self.reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss
