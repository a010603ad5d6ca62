"""3D kinematic prior penalty for fine-tuning (paper Table 9)."""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmpose.registry import MODELS as MMPOSE_MODELS

from liftedcl_mm.registry import MODELS
from liftedcl_mm.skeleton.h36m import (H36M_BONE_PARENTS, H36M_BONES, H36M_NUM_JOINTS,
                                       H36M_ROTATION_LIMITS, H36M_TEMPLATE_BONES)


def _rotations(angles_deg: np.ndarray) -> np.ndarray:
    """``Rx(a) @ Ry(b) @ Rz(c)`` for angles (..., 3) in degrees (the prior's convention)."""
    a, b, c = np.deg2rad(angles_deg).transpose(-1, *range(angles_deg.ndim - 1))
    one, zero = np.ones_like(a), np.zeros_like(a)
    rx = np.stack([one, zero, zero, zero, np.cos(a), -np.sin(a), zero, np.sin(a), np.cos(a)], -1)
    ry = np.stack([np.cos(b), zero, np.sin(b), zero, one, zero, -np.sin(b), zero, np.cos(b)], -1)
    rz = np.stack([np.cos(c), -np.sin(c), zero, np.sin(c), np.cos(c), zero, zero, zero, one], -1)
    shape = a.shape + (3, 3)
    return rx.reshape(shape) @ ry.reshape(shape) @ rz.reshape(shape)


def _angle_range_over_box(direction: np.ndarray, reference: np.ndarray, limits_row: np.ndarray,
                          resolution: float) -> Tuple[float, float]:
    """Sound ``[min, max]`` (degrees) of ``angle(R @ direction, reference)`` over an angle box.

    ``R = Rx(a) Ry(b) Rz(c)`` with each angle in its ``(lo, hi)`` row. Evaluated on a grid at most
    ``resolution`` degrees apart per axis (box corners included), then widened by half a grid
    step per axis: changing one Euler angle by ``d`` turns ``R @ direction`` by at most ``d``,
    and an angle to a fixed vector moves no more than the direction, so the widened range holds
    every value of the box, not only the grid's. ``c`` (about Z, applied first) is skipped when
    ``direction`` lies along Z, where it changes nothing.
    """
    direction = direction / np.linalg.norm(direction)
    reference = reference / np.linalg.norm(reference)
    axes, widen = [], 0.0
    for axis, (lo, hi) in enumerate(limits_row):
        if axis == 2 and np.allclose(direction[:2], 0.0):
            axes.append(np.zeros(1))
            continue
        steps = max(int(np.ceil((hi - lo) / resolution)), 1) + 1
        axes.append(np.linspace(lo, hi, steps))
        widen += 0.5 * (hi - lo) / (steps - 1)
    angles = np.stack(np.meshgrid(*axes, indexing='ij'), -1).reshape(-1, 3)
    dirs = _rotations(angles) @ direction
    ang = np.degrees(np.arctan2(np.linalg.norm(np.cross(dirs, reference), axis=1),
                                dirs @ reference))
    return max(float(ang.min()) - widen, 0.0), min(float(ang.max()) + widen, 180.0)


def joint_angle_ranges(template: np.ndarray = H36M_TEMPLATE_BONES,
                       limits=H36M_ROTATION_LIMITS,
                       resolution: float = 1.0) -> np.ndarray:
    """Range of each bone's joint angle over the prior's rotation limits.

    The prior rotates bone ``k`` by ``R_k`` (inside its limits) relative to its parent bone: both
    live in the parent's frame ``G_p``, as ``G_p t_p`` and ``G_p R_k t_k``, so their angle is
    ``angle(R_k t_k, t_p)`` whatever the rest of the skeleton and the final yaw do (e.g. the knee
    flexion for the shin). Bones on the root have the body frame as parent: their joint angle
    is the angle to the vertical +Z (yaw-invariant). See :func:`_angle_range_over_box`.

    Args:
        template (np.ndarray): (b, 3) template bone vectors.
        limits: (b, 3, 2) Euler-angle limits in degrees.
        resolution (float): Largest grid step in degrees.

    Returns:
        np.ndarray: (b, 2) ``[min, max]`` angles in radians.
    """
    template, limits = _check_tables(template, limits)
    out = np.zeros((template.shape[0], 2))
    for k, pb in enumerate(H36M_BONE_PARENTS):
        reference = np.array([0.0, 0.0, 1.0]) if pb < 0 else template[pb]
        out[k] = _angle_range_over_box(template[k], reference, limits[k], resolution)
    return np.deg2rad(out)


def polar_angle_ranges(template: np.ndarray = H36M_TEMPLATE_BONES,
                       limits=H36M_ROTATION_LIMITS,
                       resolution: float = 1.0) -> np.ndarray:
    """Range of each bone's angle to the vertical (+Z) over the prior's rotation limits.

    Bone ``k`` points along ``G_p R_k t_k``. Its polar angle differs from the angle of
    ``R_k t_k`` to +Z by at most the tilt of the parent frame's Z axis (``angle(G_p Z, Z)``),
    and that tilt is at most the sum, along the chain, of the largest ``angle(R_i Z, Z)`` each
    rotation allows (triangle inequality). The range is therefore a sound (if, far down the
    chain, loose) bound that every prior skeleton meets, at any yaw. For bones on the root it
    is exact (up to the grid).

    Args:
        template (np.ndarray): (b, 3) template bone vectors.
        limits: (b, 3, 2) Euler-angle limits in degrees.
        resolution (float): Largest grid step in degrees.

    Returns:
        np.ndarray: (b, 2) ``[min, max]`` polar angles in radians.
    """
    template, limits = _check_tables(template, limits)
    z = np.array([0.0, 0.0, 1.0])
    tilt = np.zeros(template.shape[0])  # bound on angle(G_k Z, Z), degrees
    out = np.zeros((template.shape[0], 2))
    for k, pb in enumerate(H36M_BONE_PARENTS):
        parent_tilt = 0.0 if pb < 0 else tilt[pb]
        tilt[k] = parent_tilt + _angle_range_over_box(z, z, limits[k], resolution)[1]
        lo, hi = _angle_range_over_box(template[k], z, limits[k], resolution)
        out[k] = max(lo - parent_tilt, 0.0), min(hi + parent_tilt, 180.0)
    return np.deg2rad(out)


def _check_tables(template, limits) -> Tuple[np.ndarray, np.ndarray]:
    template = np.asarray(template, dtype=np.float64)
    limits = np.asarray(limits, dtype=np.float64)
    if template.shape != (len(H36M_BONES), 3):
        raise ValueError(f'template must have shape ({len(H36M_BONES)}, 3), '
                         f'got {template.shape}')
    if limits.shape != (template.shape[0], 3, 2):
        raise ValueError(f'limits must have shape ({template.shape[0]}, 3, 2), '
                         f'got {limits.shape}')
    return template, limits


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
    * joint angles, each hinge-squared against the range the prior's per-bone rotation limits
      allow, widened by ``angle_margin`` degrees: the angle between each bone and its parent
      bone (:func:`joint_angle_ranges`; e.g. the knee flexion, at most 150 deg), and for bones
      not on the root also the bone's angle to the vertical +Z (:func:`polar_angle_ranges`;
      e.g. a thigh may not point up). For bones on the root (hips, lumbar spine) both are the
      angle to +Z, counted once. All are invariant to the prior's random yaw; being angles,
      they cannot tell a forward from a backward knee bend.

    ``loss = loss_weight * (length_weight * mean_k(len_pen) + angle_weight * ang_pen)`` with
    ``ang_pen = (sum_k joint_pen_k + sum_{k not on root} polar_pen_k) / 16``, each penalty
    ``relu(lo - x)^2 + relu(x - hi)^2`` (angles in radians), averaged over the batch
    (``reduction='mean'``). The ranges are sound bounds (see the functions), so every prior
    skeleton scores exactly 0 even with ``angle_margin=0``.

    Args:
        length_range (tuple[float]): Range of the prior's bone-length factor alpha.
            Defaults to (0.9, 1.1).
        angle_margin (float): Degrees added on both sides of each angle range (slack for
            lifted joints). Defaults to 2.
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
        margin = np.deg2rad(angle_margin)

        def widen(ranges):
            return np.stack([np.maximum(ranges[:, 0] - margin, 0.0),
                             np.minimum(ranges[:, 1] + margin, np.pi)], axis=1)

        joint = widen(joint_angle_ranges(template, limits))
        polar = widen(polar_angle_ranges(template, limits))
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
        # Reference of each bone's joint angle: its parent bone, or (index b) the vertical axis.
        num_bones = len(H36M_BONES)
        self.register_buffer('reference_index',
                             torch.tensor([num_bones if pb < 0 else pb
                                           for pb in H36M_BONE_PARENTS]), persistent=False)
        self.register_buffer('polar_mask',
                             torch.tensor([float(pb >= 0) for pb in H36M_BONE_PARENTS]),
                             persistent=False)
        self.register_buffer('angle_ranges', torch.from_numpy(joint).float(), persistent=False)
        self.register_buffer('polar_ranges', torch.from_numpy(polar).float(), persistent=False)

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

        up = bones.new_tensor([0.0, 0.0, 1.0]).expand(bones.shape[0], 1, 3)
        reference = torch.cat([bones, up], 1)[:, self.reference_index]  # (N, b, 3)
        sin = (torch.cross(bones, reference, dim=-1).pow(2).sum(-1) + self.eps).sqrt()
        joint = torch.atan2(sin, (bones * reference).sum(-1))  # (N, b) in [0, pi]
        horizontal = (bones[..., :2].pow(2).sum(-1) + self.eps).sqrt()
        polar = torch.atan2(horizontal, bones[..., 2])  # (N, b) in [0, pi]
        jr = self.angle_ranges.to(joints.dtype)
        pr = self.polar_ranges.to(joints.dtype)
        ang_pen = (self._hinge_sq(joint, jr[:, 0], jr[:, 1])
                   + self.polar_mask.to(joints.dtype) * self._hinge_sq(polar, pr[:, 0], pr[:, 1]))
        ang_pen = ang_pen.mean(1)
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
