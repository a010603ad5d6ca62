"""Skeleton discriminator with a kinematic chain space (KCS) branch."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from liftedcl_mm.registry import MODELS
from liftedcl_mm.skeleton import H36M_BONES, bone_matrix
from ..utils.kcs import kcs
from .lifting_head import ResidualFCBlock


@MODELS.register_module()
class KCSDiscriminator(BaseModule):
    """Scores 3D skeletons: real (prior) vs lifted; the adversary of ``L_adv``.

    As the authors' network (paper Fig. 4b): two branches, the flattened joints and the KCS
    matrix ``Psi = B^T B`` of the skeleton (bone lengths on the diagonal, bone-pair relations
    off it), each ``Linear -> act -> num_blocks`` residual FC blocks of width
    ``hid_channels``; their concatenation (``2 * hid_channels``) goes through
    ``Linear -> act -> Linear`` (``fuse_channels``, then 1 score). LeakyReLU(0.2), no
    normalisation layers, so scoring a batch is a per-sample function (real and fake may
    share a batch). With the defaults the sizes are the authors' (256 + 256 -> 128 -> 1).

    Differences from the authors' code: ``Psi`` is built from the 16 bones of the H36M-17
    tree (theirs has 15 bones, one of them wrong), and by default only its upper triangle
    is fed (``Psi`` is symmetric, so nothing is lost; they flatten all b*b entries).

    Args:
        num_joints (int): Joints ``J``. Defaults to 17.
        hid_channels (int): Width of each branch. Defaults to 256.
        num_blocks (int): Residual blocks per branch. Defaults to 1.
        fuse_channels (int): Width of the hidden layer after the concatenation.
            Defaults to 128.
        negative_slope (float): Slope of the LeakyReLU. Defaults to 0.2.
        bones (Sequence[tuple]): ``(parent, child)`` pairs of the KCS. Defaults to the
            16 bones of H36M-17.
        kcs_upper (bool): Feed only the upper triangle (with the diagonal) of the symmetric
            ``Psi`` (b(b+1)/2 values) instead of all b*b. Defaults to True.
        kcs_scale (float): Factor on ``Psi`` before the KCS branch. Defaults to 1 (the
            authors'). For skeletons of unit Frobenius norm (the prior's and the lifting
            head's normalisation) ``Psi``'s entries are ~0.01 and vary ~0.005 between
            skeletons, ~14x less than the joint coordinates, so at the default initialisation
            the KCS branch is nearly constant and D judges by the pose branch; ~50 brings the
            mean squared bone length of such skeletons to ~1.
        standardize (bool): Standardise both branches' inputs (flattened joints, ``Psi``) per
            feature by the mean and std of the prior's skeletons, set with
            :meth:`set_input_statistics` (``LiftedCL`` does so from its prior). Defaults to
            False (the authors'). Measured (``tools/analysis/adversarial_balance.py --mode
            sensitivity``): trained to tell prior skeletons from ones with one bone x0.6 or
            x1.4, the authors' discriminator stays at chance (0.50 held-out accuracy after
            2000 iterations), ``kcs_scale=50`` reaches ~0.68, standardised inputs ~0.99.
        minibatch_std_group (int): Append each sample's group feature spread (minibatch
            standard deviation, Karras et al.) over groups of this size; 0 off. Defaults to 0.
        std_floor (float): With ``standardize``, each feature's std is floored at this
            fraction of its branch's median std, so features the prior holds nearly constant
            (level hips: std ~0.002 against a median ~0.06) are not magnified ~30x. Defaults
            to 0 (no floor).
        input_noise (float): Std of Gaussian noise added to both branches' (standardised)
            inputs in training mode, real and lifted alike (instance noise, Sonderby et al.
            2017): D cannot separate distributions that differ by less than the noise, so it
            keeps giving the generator a gradient. Drawn from torch's global generator, so
            a resumed run is no longer bit-identical to an uninterrupted one. Defaults to 0.
        canonical_yaw (bool): Turn each skeleton about +Z (the prior's up) so that its hip
            line points along +X before the pose branch: D judges the pose, not the viewpoint
            (the prior's yaw is uniform; nothing in the image-free objective can teach the
            lifting head the camera's). The KCS branch is rotation invariant anyway.
            Defaults to False.
        hip_joints (tuple[int, int]): (right hip, left hip) for ``canonical_yaw``. Defaults
            to H36M's (1, 4).
        bone_proportions (bool): Append each bone's log share of the skeleton's total bone
            length (b values, scale-free) to the KCS branch's input. ``Psi``'s diagonal holds
            the same lengths, but squared and in absolute units: short bones (pelvis-hip,
            neck-head) have tiny entries there, which ``std_floor`` standardises by a larger
            std, so a hip bone at half its length moves its entry by only ~2 stds, while its
            log share moves by ~11 of the prior's stds (lifted skeletons of the study failed
            the plausibility test on exactly such bones). With ``standardize``, the floor is
            taken per group (``Psi``'s entries, the proportions). Defaults to False.
        signed_bends (bool): Append, for each pair of consecutive bones (into and out of a
            joint), ``(b_in x b_out) . r / (|b_in| |b_out|)`` with ``r`` the unit hip line
            (right hip - left hip, ``hip_joints``): the sine of the bend, signed by its turn
            about the body's left-right axis (13 values for H36M-17). ``Psi`` is a Gram
            matrix, the same for a skeleton and its mirror image, so it holds the size of a
            knee's bend but not its direction; in the pose branch a knee bent 10-20 deg the
            wrong way moves a coordinate by less than the input noise. Lifted skeletons of
            the study failed the plausibility test on exactly such knees. Another group for
            ``std_floor``. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 num_joints: int = 17,
                 hid_channels: int = 256,
                 num_blocks: int = 1,
                 fuse_channels: int = 128,
                 negative_slope: float = 0.2,
                 bones: Sequence[Tuple[int, int]] = H36M_BONES,
                 kcs_upper: bool = True,
                 kcs_scale: float = 1.0,
                 standardize: bool = False,
                 minibatch_std_group: int = 0,
                 std_floor: float = 0.0,
                 input_noise: float = 0.0,
                 canonical_yaw: bool = False,
                 hip_joints: Tuple[int, int] = (1, 4),
                 bone_proportions: bool = False,
                 signed_bends: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        if (int(num_joints) < 2 or int(hid_channels) < 1 or int(num_blocks) < 0
                or int(fuse_channels) < 1):
            raise ValueError('num_joints must be >= 2, hid_channels >= 1, num_blocks >= 0 and '
                             f'fuse_channels >= 1, got {num_joints}, {hid_channels}, '
                             f'{num_blocks}, {fuse_channels}')
        bones = tuple((int(p), int(c)) for p, c in bones)
        if any(not (0 <= j < int(num_joints)) for bone in bones for j in bone):
            raise ValueError(f'bones refer to joints outside [0, {num_joints}): {bones}')
        self.num_joints = int(num_joints)
        self.num_bones = len(bones)
        self.kcs_upper = kcs_upper
        if not float(kcs_scale) > 0:
            raise ValueError(f'kcs_scale must be > 0, got {kcs_scale}')
        self.kcs_scale = float(kcs_scale)
        # Non-persistent: derived from `bones`, so checkpoints do not depend on it.
        self.register_buffer(
            'bone_mat', torch.from_numpy(bone_matrix(bones, self.num_joints)), persistent=False)
        rows, cols = torch.triu_indices(self.num_bones, self.num_bones)
        self.register_buffer('triu_index', rows * self.num_bones + cols, persistent=False)
        self.bone_proportions = bool(bone_proportions)
        # the KCS branch's input: Psi's entries, then (optionally) the bone proportions
        self.kcs_groups = [len(rows) if kcs_upper else self.num_bones**2]
        if self.bone_proportions:
            self.kcs_groups.append(self.num_bones)
        self.signed_bends = bool(signed_bends)
        # (bone into a joint, bone out of it), by index into `bones`
        self.bend_pairs = [(k, l) for k, (_, child) in enumerate(bones)
                           for l, (parent, _) in enumerate(bones) if parent == child]
        if self.signed_bends:
            if not self.bend_pairs:
                raise ValueError(f'signed_bends needs consecutive bones, got {bones}')
            self.kcs_groups.append(len(self.bend_pairs))
        kcs_dim = sum(self.kcs_groups)
        self.standardize = bool(standardize)
        if self.standardize:
            # Checkpointed, so a loaded discriminator scores as it was trained.
            for name, dim in (('pose', 3 * self.num_joints), ('kcs', kcs_dim)):
                self.register_buffer(f'{name}_mean', torch.zeros(dim))
                self.register_buffer(f'{name}_std', torch.ones(dim))
            self.input_stats_ready = False
            self.register_load_state_dict_post_hook(_mark_stats_loaded)
        if int(minibatch_std_group) < 0:
            raise ValueError(f'minibatch_std_group must be >= 0, got {minibatch_std_group}')
        self.minibatch_std_group = int(minibatch_std_group)
        if float(std_floor) < 0 or float(input_noise) < 0:
            raise ValueError(f'std_floor and input_noise must be >= 0, got {std_floor}, '
                             f'{input_noise}')
        if float(std_floor) > 0 and not self.standardize:
            raise ValueError('std_floor needs standardize=True')
        self.std_floor, self.input_noise = float(std_floor), float(input_noise)
        self.canonical_yaw = bool(canonical_yaw)
        self.hip_joints = tuple(int(j) for j in hip_joints)
        if (self.canonical_yaw or self.signed_bends) and (len(self.hip_joints) != 2 or any(
                not 0 <= j < self.num_joints for j in self.hip_joints)):
            raise ValueError(f'hip_joints must be two joints in [0, {num_joints}), '
                             f'got {hip_joints}')
        act_cfg = dict(type='LeakyReLU', negative_slope=negative_slope)

        def branch(in_dim):
            return nn.Sequential(
                nn.Linear(in_dim, hid_channels), build_activation_layer(act_cfg),
                *[ResidualFCBlock(hid_channels, act_cfg) for _ in range(int(num_blocks))])

        self.pose_branch = branch(3 * self.num_joints)
        self.kcs_branch = branch(kcs_dim)
        self.fuse = nn.Sequential(
            nn.Linear(2 * hid_channels + bool(self.minibatch_std_group), fuse_channels),
            build_activation_layer(act_cfg),
            nn.Linear(fuse_channels, 1))

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        """Score skeletons.

        Args:
            joints (torch.Tensor): Skeletons of shape (N, J, 3).

        Returns:
            torch.Tensor: Scores of shape (N, 1) (LSGAN: real -> 1, fake -> 0).
        """
        if joints.dim() != 3 or joints.shape[1:] != (self.num_joints, 3):
            raise ValueError(f'KCSDiscriminator expects joints of shape (N, {self.num_joints}, 3)'
                             f', got {tuple(joints.shape)}')
        pose, psi = self._inputs(joints)
        if self.standardize:
            if not self.input_stats_ready:
                raise RuntimeError('KCSDiscriminator(standardize=True) needs the prior\'s input '
                                   'statistics: call set_input_statistics(prior_skeletons) or '
                                   'load a checkpoint that has them')
            pose = (pose - self.pose_mean) / self.pose_std
            psi = (psi - self.kcs_mean) / self.kcs_std
        if self.input_noise and self.training:
            pose = pose + self.input_noise * torch.randn_like(pose)
            psi = psi + self.input_noise * torch.randn_like(psi)
        feat = torch.cat([self.pose_branch(pose), self.kcs_branch(psi)], dim=1)
        if self.minibatch_std_group:
            feat = torch.cat([feat, self._group_spread(feat)], dim=1)
        return self.fuse(feat)

    def _group_spread(self, feat: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """(N, 1): per sample, the mean over features of the std over its group."""
        num = feat.shape[0]
        group = torch.arange(num, device=feat.device) // self.minibatch_std_group
        if num > 1 and num % self.minibatch_std_group == 1:
            group[-1] = group[-2]  # a lone last sample has no spread: it joins the group before
        num_groups = int(group[-1]) + 1
        sizes = torch.bincount(group, minlength=num_groups)[:, None].to(feat)

        def group_mean(values):
            sums = values.new_zeros(num_groups, values.shape[1]).index_add_(0, group, values)
            return sums / sizes

        centred = feat - group_mean(feat)[group]
        spread = (group_mean(centred.square()) + eps).sqrt().mean(dim=1, keepdim=True)
        return spread[group]

    def _inputs(self, joints: torch.Tensor,
                eps: float = 1e-12) -> Tuple[torch.Tensor, torch.Tensor]:
        """Flattened joints (N, 3J) and the (scaled, maybe upper-triangle) KCS (N, K), with
        the log bone proportions (N, b) and the signed bends (N, pairs) appended to it if
        ``bone_proportions`` / ``signed_bends``."""
        gram = kcs(joints, bone_mat=self.bone_mat)
        psi = gram.flatten(1) * self.kcs_scale
        if self.kcs_upper:
            psi = psi[:, self.triu_index]
        if self.bone_proportions or self.signed_bends:
            # float32 under AMP too (eps would vanish in fp16), and eps inside the roots: a
            # zero-length bone has a finite gradient
            lengths = (gram.diagonal(dim1=1, dim2=2).float() + eps).sqrt()
            extra = [psi]
            if self.bone_proportions:
                extra.append((lengths / lengths.sum(1, keepdim=True)).log())
            if self.signed_bends:
                extra.append(self._signed_bends(joints, lengths, eps))
            psi = torch.cat(extra, dim=1)
        if self.canonical_yaw:
            joints = self._turn_to_canonical_yaw(joints)
        return joints.flatten(1), psi

    def _signed_bends(self, joints: torch.Tensor, lengths: torch.Tensor,
                      eps: float) -> torch.Tensor:
        """(N, pairs): each bend's sine about the unit hip line; ``lengths`` (N, b)."""
        joints = joints.to(lengths)
        bone_vecs = torch.einsum('jb,njd->nbd', self.bone_mat.to(joints), joints)
        right, left = self.hip_joints
        hip_line = joints[:, right] - joints[:, left]
        hip_line = hip_line / (hip_line.square().sum(1, keepdim=True) + eps).sqrt()
        into, out = (list(side) for side in zip(*self.bend_pairs))
        turn = torch.linalg.cross(bone_vecs[:, into], bone_vecs[:, out], dim=-1)
        return (turn * hip_line[:, None]).sum(-1) / (lengths[:, into] * lengths[:, out])

    def _turn_to_canonical_yaw(self, joints: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """(N, J, 3) turned about +Z (the prior's up) so the hip line points along +X."""
        right, left = self.hip_joints
        hips = joints[:, right, :2] - joints[:, left, :2]
        # (cos, sin) of the hip line's yaw; a vertical hip line keeps its yaw (no turn)
        norm = hips.norm(dim=1, keepdim=True)
        cos_sin = torch.where(norm > eps, hips / norm.clamp(min=eps),
                              hips.new_tensor([1.0, 0.0]))
        cos, sin = cos_sin[:, :1], cos_sin[:, 1:]
        x, y = joints[..., 0], joints[..., 1]
        return torch.stack([cos * x + sin * y, cos * y - sin * x, joints[..., 2]], dim=-1)

    @torch.no_grad()
    def set_input_statistics(self, skeletons: torch.Tensor, eps: float = 1e-6) -> None:
        """Per-feature mean and std of both branches' inputs over ``skeletons`` (P, J, 3)."""
        if not self.standardize:
            raise RuntimeError('set_input_statistics needs KCSDiscriminator(standardize=True)')
        skeletons = torch.as_tensor(skeletons, dtype=self.pose_mean.dtype,
                                    device=self.pose_mean.device)
        if skeletons.dim() != 3 or skeletons.shape[0] < 2 or \
                skeletons.shape[1:] != (self.num_joints, 3):
            raise ValueError(f'skeletons must have shape (P >= 2, {self.num_joints}, 3), got '
                             f'{tuple(skeletons.shape)}')
        groups = dict(pose=[3 * self.num_joints], kcs=self.kcs_groups)
        for name, values in zip(('pose', 'kcs'), self._inputs(skeletons)):
            getattr(self, f'{name}_mean').copy_(values.mean(0))
            # each group of features floored by its own median std
            stds = values.std(0).split(groups[name])
            getattr(self, f'{name}_std').copy_(torch.cat([
                std.clamp(min=max(eps, self.std_floor * float(std.median()))) for std in stds]))
        self.input_stats_ready = True


def _mark_stats_loaded(module: KCSDiscriminator, incompatible_keys) -> None:
    # statistics came with the state dict unless they are reported missing
    missing = {k.rsplit('.', 1)[-1] for k in incompatible_keys.missing_keys}
    if not missing & {'pose_mean', 'pose_std', 'kcs_mean', 'kcs_std'}:
        module.input_stats_ready = True
