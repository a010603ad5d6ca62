"""Kinematic chain space (KCS) of a skeleton (Wandt et al.; paper eq. 5-6)."""
from typing import Optional, Sequence, Tuple

import torch

from liftedcl_mm.skeleton import H36M_BONES, bone_matrix


def kcs(joints: torch.Tensor,
        bones: Sequence[Tuple[int, int]] = H36M_BONES,
        bone_mat: Optional[torch.Tensor] = None) -> torch.Tensor:
    """KCS matrix ``Psi = B^T B`` of each skeleton, ``B = X C`` its bone vectors.

    Args:
        joints (torch.Tensor): Skeletons of shape (N, J, 3).
        bones (Sequence[tuple]): ``(parent, child)`` pairs; defaults to the 16 H36M bones.
            Ignored when ``bone_mat`` is given.
        bone_mat (torch.Tensor, optional): Precomputed bone matrix ``C`` of shape (J, b)
            (``liftedcl_mm.skeleton.bone_matrix``).

    Returns:
        torch.Tensor: Shape (N, b, b); entry (k, l) is the dot product of bones k and l, so
        the diagonal holds the squared bone lengths.
    """
    if joints.dim() != 3 or joints.shape[-1] != 3:
        raise ValueError(f'joints must have shape (N, J, 3), got {tuple(joints.shape)}')
    if bone_mat is None:
        bone_mat = torch.from_numpy(bone_matrix(bones, joints.shape[1]))
    if bone_mat.shape[0] != joints.shape[1]:
        raise ValueError(f'bone matrix is for {bone_mat.shape[0]} joints, '
                         f'joints have {joints.shape[1]}')
    bone_mat = bone_mat.to(device=joints.device, dtype=joints.dtype)
    # Joints are rows here, so the bone vectors are C^T X, (N, b, 3).
    bone_vecs = torch.einsum('jb,njd->nbd', bone_mat, joints)
    return bone_vecs @ bone_vecs.transpose(1, 2)
