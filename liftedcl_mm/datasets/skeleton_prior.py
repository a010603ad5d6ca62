"""Plausible 3D skeletons: the "real" samples of the discriminator (paper App. B).

Sampled skeletons start at the root (origin) and walk the H36M tree: bone ``k`` is
``G_k @ (alpha_k * template_k)`` with ``alpha ~ U(length_range)`` and ``G_k = G_parent @ R_k``,
where ``R_k = Rx(a) @ Ry(b) @ Rz(c)`` is the bone's rotation relative to its parent bone (a
kinematic chain: a knee bends about the thigh's own axis, whatever the hip does). Each angle is
drawn from a (split) normal truncated to the bone's anatomical limits
(:data:`~liftedcl_mm.skeleton.h36m.H36M_ROTATION_LIMITS` and
:data:`~liftedcl_mm.skeleton.h36m.H36M_ROTATION_DISTRIBUTIONS`, rationale there). Each skeleton
is divided by its Frobenius norm and finally rotated by a random angle about the vertical Z axis.
Frame: the subject faces +Y, +Z up, subject's right +X (right-handed).

Skeletons can also come from a file (e.g. the authors' released ``norm_joints.pt``), turned into
this frame by a proper rotation (:func:`load_skeleton_file`).
"""
import json
import math
import os
import os.path as osp
import warnings
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from scipy.special import ndtr, ndtri

from liftedcl_mm.registry import DATASETS
from liftedcl_mm.utils.fileio import atomic_write
from liftedcl_mm.skeleton.h36m import (H36M_BONE_PARENTS, H36M_BONES, H36M_JOINT_NAMES,
                                       H36M_NUM_JOINTS, H36M_PARENTS,
                                       H36M_ROTATION_DISTRIBUTIONS, H36M_ROTATION_LIMITS,
                                       H36M_TEMPLATE_BONES)
from liftedcl_mm.skeleton.stats import up_vector


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Rx(a) @ Ry(b) @ Rz(c)`` from angles in degrees.

    Args:
        angles (np.ndarray): ``(..., 3)`` angles ``(a, b, c)`` about X, Y, Z in degrees.

    Returns:
        np.ndarray: ``(..., 3, 3)`` rotation matrices.
    """
    rad = np.deg2rad(angles)
    ca, cb, cc = np.cos(rad[..., 0]), np.cos(rad[..., 1]), np.cos(rad[..., 2])
    sa, sb, sc = np.sin(rad[..., 0]), np.sin(rad[..., 1]), np.sin(rad[..., 2])
    mat = np.empty(rad.shape[:-1] + (3, 3), dtype=rad.dtype)
    # Closed form of Rx(a) @ Ry(b) @ Rz(c): one pass over all skeletons and bones at once.
    mat[..., 0, 0] = cb * cc
    mat[..., 0, 1] = -cb * sc
    mat[..., 0, 2] = sb
    mat[..., 1, 0] = ca * sc + sa * sb * cc
    mat[..., 1, 1] = ca * cc - sa * sb * sc
    mat[..., 1, 2] = -sa * cb
    mat[..., 2, 0] = sa * sc - ca * sb * cc
    mat[..., 2, 1] = sa * cc + ca * sb * sc
    mat[..., 2, 2] = ca * cb
    return mat


def rotate_by_euler(angles: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``Rx(a) @ Ry(b) @ Rz(c) @ v`` without forming the matrices.

    Three plane rotations on the vector components: the same result as
    ``euler_to_matrix(angles) @ v`` without (..., 3, 3) arrays or a batched matmul.

    Args:
        angles (np.ndarray): ``(..., 3)`` angles ``(a, b, c)`` about X, Y, Z in degrees.
        vectors (np.ndarray): ``(..., 3)`` vectors, broadcastable against ``angles``.

    Returns:
        np.ndarray: ``(..., 3)`` rotated vectors.
    """
    rad = np.deg2rad(angles)
    cos, sin = np.cos(rad), np.sin(rad)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    # about Z by c
    x, y = cos[..., 2] * x - sin[..., 2] * y, sin[..., 2] * x + cos[..., 2] * y
    # about Y by b
    x, z = cos[..., 1] * x + sin[..., 1] * z, cos[..., 1] * z - sin[..., 1] * x
    # about X by a
    y, z = cos[..., 0] * y - sin[..., 0] * z, sin[..., 0] * y + cos[..., 0] * z
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def truncated_split_normal_ppf(u: np.ndarray, lo: np.ndarray, hi: np.ndarray, mode: np.ndarray,
                               std_below: np.ndarray, std_above: np.ndarray) -> np.ndarray:
    """Inverse CDF of a split normal truncated to ``[lo, hi]``.

    The density is ``exp(-(x - mode)^2 / (2 s^2))`` with ``s = std_below`` below the mode and
    ``s = std_above`` above it (continuous at the mode), zero outside ``[lo, hi]``: a normal
    whose two sides spread differently, for joints that move much further one way (hip
    flexion vs extension). Equal stds give the truncated normal; infinite stds the uniform
    distribution on ``[lo, hi]``; ``lo == hi`` gives ``lo``. One uniform ``u`` per draw keeps the
    sampler a single vectorised pass; everything that depends on the parameters only is
    computed once on their (small) arrays.

    Args:
        u (np.ndarray): ``(..., *P)`` uniform numbers in [0, 1).
        lo, hi, mode, std_below, std_above (np.ndarray): ``P``-shaped parameters (broadcast
            against the trailing dimensions of ``u``); ``lo <= mode <= hi``.

    Returns:
        np.ndarray: ``u``-shaped draws in ``[lo, hi]``.
    """
    lo, hi, mode, s_lo, s_hi = np.broadcast_arrays(
        *(np.asarray(v, np.float64) for v in (lo, hi, mode, std_below, std_above)))
    uniform = ~np.isfinite(s_lo) | ~np.isfinite(s_hi) | (hi <= lo)
    s_lo, s_hi = np.where(uniform, 1.0, s_lo), np.where(uniform, 1.0, s_hi)
    # Unnormalised masses below and above the mode: s * (probability of that half-normal side
    # inside the box). Each side is inverted from its own tail (the lower one from below, the
    # upper one from above), where ndtr / ndtri keep their relative precision.
    tail_lo = ndtr((lo - mode) / s_lo)  # P(side below < lo)
    tail_hi = ndtr((mode - hi) / s_hi)  # P(side above > hi)
    mass_lo, mass_hi = s_lo * (0.5 - tail_lo), s_hi * (0.5 - tail_hi)
    total = mass_lo + mass_hi
    u = np.asarray(u, np.float64)
    below = u * total < mass_lo
    arg = np.where(below, tail_lo + u * total / s_lo, tail_hi + (1.0 - u) * total / s_hi)
    with np.errstate(invalid='ignore', divide='ignore'):
        z = ndtri(arg)
    draws = np.clip(np.where(below, mode + s_lo * z, mode - s_hi * z), lo, hi)
    return np.where(uniform, lo + u * (hi - lo), draws)


def _check_limits(limits, num_bones: int) -> np.ndarray:
    lim = np.asarray(limits, dtype=np.float64)
    if lim.shape != (num_bones, 3, 2):
        raise ValueError(f'rotation limits must have shape ({num_bones}, 3, 2) '
                         f'(bone, axis, lo/hi), got {lim.shape}')
    if not np.all(np.isfinite(lim)) or np.any(lim[..., 0] > lim[..., 1]):
        raise ValueError('rotation limits must be finite (lo, hi) pairs with lo <= hi')
    return lim


def _check_distributions(distributions, limits: np.ndarray) -> np.ndarray:
    num_bones = limits.shape[0]
    if isinstance(distributions, str):
        if distributions != 'uniform':
            raise ValueError(f"distributions must be an array or 'uniform', "
                             f'got {distributions!r}')
        dist = np.full((num_bones, 3, 3), np.inf)
        dist[..., 0] = limits.mean(-1)
        return dist
    dist = np.asarray(distributions, dtype=np.float64)
    if dist.shape != (num_bones, 3, 3):
        raise ValueError(f'rotation distributions must have shape ({num_bones}, 3, 3) '
                         f'(bone, axis, mode/std_below/std_above), got {dist.shape}')
    mode, stds = dist[..., 0], dist[..., 1:]
    if not np.all(np.isfinite(mode)) or np.any(np.isnan(stds)) or np.any(stds <= 0) \
            or np.any(np.isinf(stds[..., 0]) != np.isinf(stds[..., 1])):
        raise ValueError('rotation distributions must be (mode, std_below, std_above) with a '
                         'finite mode and stds > 0 (both inf for uniform)')
    if np.any((mode < limits[..., 0]) | (mode > limits[..., 1])):
        raise ValueError('the mode of every rotation distribution must lie within its limits')
    return dist


def draw_skeleton_params(num: int,
                         rng: np.random.Generator,
                         limits=H36M_ROTATION_LIMITS,
                         length_range: Tuple[float, float] = (0.9, 1.1),
                         rotate_vertical: bool = True,
                         distributions=H36M_ROTATION_DISTRIBUTIONS) -> Dict[str, np.ndarray]:
    """Draw every random number of ``num`` skeletons at once.

    Args:
        num (int): Number of skeletons N.
        rng (np.random.Generator): Source of randomness.
        limits: ``(b, 3, 2)`` Euler-angle limits in degrees, one row per bone.
        length_range (tuple): Range of the bone-length ratio alpha.
        rotate_vertical (bool): Whether to draw a yaw about Z (else all yaws are 0).
        distributions: ``(b, 3, 3)`` (mode, std_below, std_above) in degrees of each angle's
            split normal truncated to its limits (stds inf: uniform), or ``'uniform'`` for the
            paper's uniform sampling.

    Returns:
        dict: ``alphas`` (N, b), ``angles`` (N, b, 3) in degrees (relative to the parent
        bone), ``yaw`` (N,) in degrees.
    """
    lim = _check_limits(limits, len(H36M_BONES))
    dist = _check_distributions(distributions, lim)
    lo_len, hi_len = length_range
    if not 0 < lo_len <= hi_len:
        raise ValueError(f'length_range must be (lo, hi) with 0 < lo <= hi, got {length_range}')
    num_bones = lim.shape[0]
    alphas = rng.uniform(lo_len, hi_len, size=(num, num_bones))
    u = rng.random(size=(num, num_bones, 3))
    angles = truncated_split_normal_ppf(u, lim[..., 0], lim[..., 1], dist[..., 0], dist[..., 1],
                                        dist[..., 2])
    yaw = rng.uniform(-180.0, 180.0, size=num)
    if not rotate_vertical:
        yaw[:] = 0.0
    return dict(alphas=alphas, angles=angles, yaw=yaw)


# Bones that have children need their frame G; leaves only their direction.
_HAS_CHILDREN = tuple(k in H36M_BONE_PARENTS for k in range(len(H36M_BONES)))


def build_skeletons(alphas: np.ndarray,
                    angles: np.ndarray,
                    yaw: np.ndarray,
                    template: np.ndarray = H36M_TEMPLATE_BONES,
                    return_info: bool = False,
                    chunk_size: int = 1024):
    """Assemble skeletons from drawn parameters, vectorised over skeletons.

    Args:
        alphas (np.ndarray): ``(N, b)`` bone-length ratios.
        angles (np.ndarray): ``(N, b, 3)`` Euler angles in degrees, each bone relative to its
            parent bone (``H36M_BONE_PARENTS``).
        yaw (np.ndarray): ``(N,)`` rotation about Z in degrees, applied last.
        template (np.ndarray): ``(b, 3)`` template bone vectors.
        return_info (bool): Also return the skeletons before normalisation and the scales.
        chunk_size (int): Skeletons assembled per vectorised block. Blocks keep the
            intermediates small enough to stay in cache instead of page-faulting fresh
            N-sized buffers for each of them.

    Returns:
        np.ndarray | tuple: ``(N, 17, 3)`` float32 skeletons of unit Frobenius norm; with
        ``return_info``, also a dict with ``raw`` (N, 17, 3) before scaling and yaw and ``scale``
        (N,) Frobenius norms of ``raw``.
    """
    num = alphas.shape[0]
    template = np.asarray(template, np.float64)
    out = np.empty((num, H36M_NUM_JOINTS, 3), dtype=np.float32)
    raw = np.empty((num, H36M_NUM_JOINTS, 3), dtype=np.float64) if return_info else None
    scale = np.empty(num, dtype=np.float64)
    for start in range(0, num, chunk_size):
        block = slice(start, start + chunk_size)
        rot = euler_to_matrix(angles[block])  # (n, b, 3, 3) relative rotations
        # Each bone in its parent's frame, then carried into the body frame by the parent's G.
        local = alphas[block, :, None] * (rot @ template[:, :, None])[..., 0]
        frames = {}
        joints = np.zeros((local.shape[0], H36M_NUM_JOINTS, 3), dtype=np.float64)
        # Parents come before children, so one pass in bone order accumulates the chain.
        for k, (parent, child) in enumerate(H36M_BONES):
            pb = H36M_BONE_PARENTS[k]
            if pb < 0:
                bone = local[:, k]
            else:
                bone = np.einsum('nij,nj->ni', frames[pb], local[:, k])
            if _HAS_CHILDREN[k]:  # leaves need no frame
                frames[k] = rot[:, k] if pb < 0 else frames[pb] @ rot[:, k]
            joints[:, child] = joints[:, parent] + bone
        norm = np.sqrt(np.einsum('njc,njc->n', joints, joints))
        scale[block] = norm
        if raw is not None:
            raw[block] = joints
        normed = joints / norm[:, None, None]
        rad = np.deg2rad(yaw[block])
        cos, sin = np.cos(rad)[:, None], np.sin(rad)[:, None]
        out[block, :, 0] = cos * normed[..., 0] - sin * normed[..., 1]
        out[block, :, 1] = sin * normed[..., 0] + cos * normed[..., 1]
        out[block, :, 2] = normed[..., 2]
    if return_info:
        return out, dict(raw=raw, scale=scale)
    return out


def sample_skeletons(num: int,
                     seed: Optional[int] = 0,
                     limits=H36M_ROTATION_LIMITS,
                     length_range: Tuple[float, float] = (0.9, 1.1),
                     rotate_vertical: bool = True,
                     template: np.ndarray = H36M_TEMPLATE_BONES,
                     return_info: bool = False,
                     distributions=H36M_ROTATION_DISTRIBUTIONS):
    """Sample ``num`` plausible skeletons (paper App. B), vectorised.

    Args:
        num (int): Number of skeletons N (>= 1).
        seed (int, optional): Seed of a ``numpy.random.Generator``; equal seeds give equal
            skeletons.
        limits: ``(16, 3, 2)`` Euler-angle limits in degrees (see ``H36M_ROTATION_LIMITS``).
        length_range (tuple): Range of the per-bone length ratio alpha.
        rotate_vertical (bool): Rotate every skeleton by a random angle about Z.
        template (np.ndarray): ``(16, 3)`` template bone vectors.
        return_info (bool): Also return a dict with the drawn ``alphas``, ``angles``, ``yaw``, the
            pre-normalisation skeletons ``raw`` and their norms ``scale`` (for checks).
        distributions: ``(16, 3, 3)`` (mode, std_below, std_above) of each angle's truncated
            split normal (see ``H36M_ROTATION_DISTRIBUTIONS``), or ``'uniform'``.

    Returns:
        np.ndarray | tuple: ``(N, 17, 3)`` float32 skeletons in MMPose's H36M order.
    """
    if not isinstance(num, (int, np.integer)) or isinstance(num, bool) or num < 1:
        raise ValueError(f'num must be a positive int, got {num!r}')
    rng = np.random.default_rng(seed)
    params = draw_skeleton_params(int(num), rng, limits, length_range, rotate_vertical,
                                  distributions)
    if not return_info:
        return build_skeletons(params['alphas'], params['angles'], params['yaw'], template)
    skeletons, info = build_skeletons(
        params['alphas'], params['angles'], params['yaw'], template, return_info=True)
    info.update(params)
    return skeletons, info


def _sample_skeleton_reference(alphas: Sequence[float],
                               angles: Sequence[Sequence[float]],
                               yaw: float,
                               template=H36M_TEMPLATE_BONES) -> np.ndarray:
    """Straightforward one-skeleton version of :func:`build_skeletons` (tests, benchmarks).

    Plain Python: one rotation matrix per bone from elementary rotations, each bone's frame the
    product of its parent's frame and its own rotation, joints by walking the parent table.

    Args:
        alphas: ``(16,)`` length ratios; angles: ``(16, 3)`` degrees; yaw: degrees.

    Returns:
        np.ndarray: ``(17, 3)`` float32 skeleton.
    """

    def rx(t):
        return np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])

    def ry(t):
        return np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])

    def rz(t):
        return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])

    joints = [np.zeros(3) for _ in range(H36M_NUM_JOINTS)]
    frames = [np.eye(3) for _ in range(H36M_NUM_JOINTS)]  # frame of the bone ending at a joint
    for joint in range(1, H36M_NUM_JOINTS):
        k = joint - 1  # bone k ends at joint k + 1
        parent = H36M_PARENTS[joint]
        a, b, c = (math.radians(v) for v in angles[k])
        frames[joint] = frames[parent] @ rx(a) @ ry(b) @ rz(c)
        joints[joint] = joints[parent] + frames[joint] @ (alphas[k] * np.asarray(template[k]))
    skel = np.stack(joints)
    skel = skel / math.sqrt(float((skel**2).sum()))
    skel = (rz(math.radians(yaw)) @ skel.T).T
    return skel.astype(np.float32)


def up_axis_rotation(up_axis: str) -> np.ndarray:
    """The proper rotation (det +1) that takes a file's ``up_axis`` to our +Z.

    The smallest such rotation: about the axis ``up x Z`` (for ``'-z'``, a half turn about X).
    It never mirrors, so a right-handed file stays right-handed. For ``'-y'`` (the authors'
    prior) it is a quarter turn about X: ``(x, y, z) -> (x, z, -y)``.

    Args:
        up_axis (str): One of ``'+x', '-x', '+y', '-y', '+z', '-z'``.

    Returns:
        np.ndarray: ``(3, 3)`` rotation matrix ``R`` with ``R @ up = (0, 0, 1)``.
    """
    up = up_vector(up_axis)
    z = np.array([0.0, 0.0, 1.0])
    cos = float(up @ z)
    if cos > 1 - 1e-12:
        return np.eye(3)
    if cos < -1 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])  # half turn about X
    axis = np.cross(up, z)
    sin = float(np.linalg.norm(axis))
    axis = axis / sin
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    # Rodrigues' formula.
    rot = np.eye(3) + sin * k + (1 - cos) * (k @ k)
    return np.round(rot, 12) + 0.0


_SKELETON_EXTS = ('.pt', '.pth', '.npy', '.npz')


def _read_array(path: str, key: Optional[str]) -> np.ndarray:
    """The raw array stored in ``path`` (no pickles: weights-only torch, allow_pickle=False)."""
    ext = osp.splitext(path)[1].lower()
    if ext in ('.pt', '.pth'):
        import torch
        obj = torch.load(path, map_location='cpu', weights_only=True)
        if isinstance(obj, dict):
            if key is None:
                if len(obj) != 1:
                    raise ValueError(f'holds a dict with keys {sorted(map(str, obj))}; '
                                     'choose one with skeleton_key')
                key = next(iter(obj))
            if key not in obj:
                raise ValueError(f'has no entry {key!r} (entries: {sorted(map(str, obj))})')
            obj = obj[key]
        elif key is not None:
            raise ValueError(f'holds a {type(obj).__name__}, not a dict: skeleton_key={key!r} '
                             'cannot apply')
        if not isinstance(obj, torch.Tensor):
            raise ValueError(f'holds a {type(obj).__name__}, expected a tensor')
        return obj.detach().cpu().numpy()
    if ext == '.npy':
        if key is not None:
            raise ValueError(f'is a single .npy array: skeleton_key={key!r} cannot apply')
        return np.load(path, allow_pickle=False)
    if ext == '.npz':
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if key is None:
                if len(names) != 1:
                    raise ValueError(f'holds arrays {names}; choose one with skeleton_key')
                key = names[0]
            if key not in names:
                raise ValueError(f'has no array {key!r} (arrays: {names})')
            return data[key]
    raise ValueError(f'has an unsupported extension {ext!r} (expected one of {_SKELETON_EXTS})')


def load_skeleton_file(path: str, up_axis: str = '+z', key: Optional[str] = None) -> np.ndarray:
    """Load ``(N, 17, 3)`` skeletons from a file and bring them into our frame.

    The joints are rotated by :func:`up_axis_rotation` (a proper rotation: never a mirror, so
    the file must already be right-handed; check with ``tools/misc/sample_skeletons.py
    --stats``), re-centred on the root and divided by their Frobenius norm, as sampled ones.

    Args:
        path (str): ``.pt`` / ``.pth`` (a tensor, or a dict of tensors; read with
            ``torch.load(weights_only=True)``), ``.npy`` or ``.npz`` (read without pickles).
        up_axis (str): The file's up axis, e.g. ``'-y'`` for the authors' ``norm_joints.pt``.
        key (str, optional): Entry of a ``.npz`` / dict file; optional when it holds one.

    Returns:
        np.ndarray: ``(N, 17, 3)`` float32, root at the origin, unit Frobenius norm, +Z up.

    Raises:
        ValueError: naming ``path``, when it is missing, unreadable, unsafe (pickled objects),
            or holds anything but finite numbers of shape ``(N, 17, 3)``.
    """
    rot = up_axis_rotation(up_axis)
    if not osp.isfile(path):
        raise ValueError(f'skeleton file {path} does not exist')
    try:
        arr = _read_array(path, key)
    except ValueError as err:
        raise ValueError(f'skeleton file {path} {err}') from err
    except Exception as err:  # torch / numpy raise many types for corrupt or unsafe files
        raise ValueError(f'skeleton file {path} cannot be read safely '
                         f'({type(err).__name__}: {err})') from err
    arr = np.asarray(arr)
    if arr.dtype.kind not in 'fiu':
        raise ValueError(f'skeleton file {path} holds dtype {arr.dtype}, expected numbers')
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1:] != (H36M_NUM_JOINTS, 3):
        raise ValueError(f'skeleton file {path} holds shape {arr.shape}, expected '
                         f'(N, {H36M_NUM_JOINTS}, 3) joints in H36M order')
    joints = arr.astype(np.float64)
    if not np.all(np.isfinite(joints)):
        raise ValueError(f'skeleton file {path} holds non-finite values')
    joints = joints @ rot.T
    joints = joints - joints[:, :1]
    norm = np.sqrt(np.einsum('njc,njc->n', joints, joints))
    if np.any(norm <= 1e-12 * max(1.0, float(np.abs(arr).max()))):
        bad = int(np.flatnonzero(norm <= 1e-12 * max(1.0, float(np.abs(arr).max())))[0])
        raise ValueError(f'skeleton file {path}: skeleton {bad} has all joints at one point')
    return (joints / norm[:, None, None]).astype(np.float32)


def rotate_about_vertical(skeletons: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
    """Rotate ``(N, 17, 3)`` skeletons about +Z by ``yaw_deg`` (N,) degrees (float32)."""
    rad = np.deg2rad(np.asarray(yaw_deg, np.float64))
    cos, sin = np.cos(rad)[:, None], np.sin(rad)[:, None]
    sk = skeletons.astype(np.float64)
    out = np.empty_like(sk)
    out[..., 0] = cos * sk[..., 0] - sin * sk[..., 1]
    out[..., 1] = sin * sk[..., 0] + cos * sk[..., 1]
    out[..., 2] = sk[..., 2]
    return out.astype(np.float32)


def _load_cache(path: str, num: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f'skeleton cache file {path} is not a readable .npy array: {err}') from err
    if arr.ndim != 3 or arr.shape[1:] != (H36M_NUM_JOINTS, 3) or arr.shape[0] != num:
        raise ValueError(f'skeleton cache file {path} has shape {arr.shape}, expected '
                         f'({num}, {H36M_NUM_JOINTS}, 3); delete it to resample')
    if arr.dtype != np.float32:
        raise ValueError(f'skeleton cache file {path} has dtype {arr.dtype}, expected float32')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'skeleton cache file {path} holds non-finite values')
    return arr


# Bumped whenever sample_skeletons draws other skeletons for the same arguments: caches written
# by another version are then refused instead of silently used.
SAMPLER_VERSION = 1


def _cache_meta_path(cache_file: str) -> str:
    return cache_file + '.json'


def _check_cache_meta(cache_file: str, expected: dict) -> None:
    """Refuse a cache whose sidecar says it was sampled with other arguments."""
    meta_path = _cache_meta_path(cache_file)
    if not osp.isfile(meta_path):
        warnings.warn(f'skeleton cache file {cache_file} has no {osp.basename(meta_path)} '
                      'sidecar (written by an older version or by hand): its sampling '
                      'arguments cannot be checked against this config')
        return
    try:
        with open(meta_path) as f:
            found = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'skeleton cache sidecar {meta_path} is not readable JSON: {err}; '
                         'delete both files to resample') from err
    differ = [f'{k}={found.get(k)!r} (config: {v!r})' for k, v in expected.items()
              if found.get(k) != v]
    if differ:
        raise ValueError(f'skeleton cache file {cache_file} was sampled with other arguments: '
                         f'{"; ".join(differ)}. Delete it (and {osp.basename(meta_path)}) to '
                         'resample, or point cache_file elsewhere')


def save_npy_atomic(path: str, arr: np.ndarray) -> None:
    """Write ``arr`` to ``path`` so that no half-written file ever carries the final name.

    The file gets the mode of a plain ``open()`` under the umask (readable by the group/others
    where the umask allows), not ``mkstemp``'s 0600.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False), suffix='.npy')


@DATASETS.register_module()
class SkeletonPriorDataset:
    """A fixed set of plausible 3D skeletons (paper App. B): sampled, or loaded from a file.

    Sampled (default): ``num_samples`` skeletons of :func:`sample_skeletons`, optionally cached.
    Loaded (``skeleton_file``): e.g. the authors' released ``norm_joints.pt`` (with
    ``up_axis='-y'``), brought into our frame by :func:`load_skeleton_file`.

    Args:
        num_samples (int, optional): Number of skeletons N. Sampling: required, defaults to
            10000 (paper: ~10K). Loading: None keeps every skeleton of the file, an int the
            first ``num_samples`` (the file must hold that many).
        seed (int): Seed of the sampler (and of the yaws of loaded skeletons); equal seeds give
            equal skeletons. Defaults to 0.
        cache_file (str, optional): ``.npy`` file of ``(N, 17, 3)`` float32 sampled skeletons:
            loaded when it exists, else written (atomically) after sampling, with a
            ``<cache_file>.json`` sidecar holding the sampling arguments; a cache whose sidecar
            names other arguments (seed, length range, limits, ... or sampler version) is
            refused. Sampling only. Defaults to None.
        length_range (tuple): Range of the per-bone length ratio alpha (sampling only).
            Defaults to (0.9, 1.1).
        rotate_vertical (bool, optional): Rotate each skeleton by a random angle about Z.
            None (default): True when sampling (paper), False for a loaded file, which is used
            as released (the authors' skeletons already come in many orientations).
        limits (optional): ``(16, 3, 2)`` Euler-angle limits in degrees (sampling only);
            defaults to ``H36M_ROTATION_LIMITS``.
        distributions (optional): ``(16, 3, 3)`` (mode, std_below, std_above) of each angle's
            truncated split normal, or ``'uniform'`` (sampling only); defaults to
            ``H36M_ROTATION_DISTRIBUTIONS``.
        skeleton_file (str, optional): ``.pt`` / ``.pth`` / ``.npy`` / ``.npz`` file of
            ``(N, 17, 3)`` joints in H36M order to use instead of sampling. Defaults to None.
        up_axis (str): The file's up axis (``'+z'``, ``'-y'``, ...). Defaults to ``'+z'``.
        skeleton_key (str, optional): Entry of a ``.npz`` / dict file holding several arrays.
    """

    METAINFO = dict(
        joint_names=H36M_JOINT_NAMES, parents=H36M_PARENTS, bones=H36M_BONES)

    def __init__(self,
                 num_samples: Optional[int] = 10000,
                 seed: int = 0,
                 cache_file: Optional[str] = None,
                 length_range: Tuple[float, float] = (0.9, 1.1),
                 rotate_vertical: Optional[bool] = None,
                 limits=None,
                 distributions: Union[None, str, Sequence] = None,
                 skeleton_file: Optional[str] = None,
                 up_axis: str = '+z',
                 skeleton_key: Optional[str] = None) -> None:
        if num_samples is not None and (not isinstance(num_samples, int)
                                        or isinstance(num_samples, bool) or num_samples < 1):
            raise ValueError(f'num_samples must be a positive int, got {num_samples!r}')
        self.num_samples = num_samples
        self.seed = seed
        self.cache_file = cache_file
        self.skeleton_file = skeleton_file
        if skeleton_file is not None:
            if cache_file is not None:
                raise ValueError('cache_file applies to sampled skeletons; a skeleton_file is '
                                 'loaded as it is (give one of them)')
            skeletons = load_skeleton_file(skeleton_file, up_axis, skeleton_key)
            if num_samples is not None:
                if num_samples > len(skeletons):
                    raise ValueError(f'skeleton file {skeleton_file} holds {len(skeletons)} '
                                     f'skeletons, fewer than num_samples={num_samples}')
                skeletons = skeletons[:num_samples]
            if rotate_vertical:
                yaw = np.random.default_rng(seed).uniform(-180.0, 180.0, len(skeletons))
                skeletons = rotate_about_vertical(skeletons, yaw)
            self.skeletons = np.ascontiguousarray(skeletons, dtype=np.float32)
            return
        if num_samples is None:
            raise ValueError('num_samples is required when sampling (no skeleton_file)')
        if up_vector(up_axis)[2] != 1.0:
            raise ValueError(f'up_axis={up_axis!r} describes a skeleton_file; sampled '
                             'skeletons are always +Z up')
        limits = H36M_ROTATION_LIMITS if limits is None else limits
        distributions = H36M_ROTATION_DISTRIBUTIONS if distributions is None else distributions
        rotate_vertical = True if rotate_vertical is None else bool(rotate_vertical)
        # what the cache must have been sampled with (JSON-comparable)
        sampling = dict(
            sampler_version=SAMPLER_VERSION, num_samples=num_samples, seed=seed,
            length_range=[float(v) for v in length_range], rotate_vertical=rotate_vertical,
            limits=np.asarray(limits, dtype=float).tolist(),
            distributions=(distributions if isinstance(distributions, str) else
                           np.asarray(distributions, dtype=float).tolist()))
        if cache_file is not None and osp.isfile(cache_file):
            self.skeletons = _load_cache(cache_file, num_samples)
            _check_cache_meta(cache_file, sampling)
        else:
            self.skeletons = sample_skeletons(
                num_samples, seed, limits=limits, length_range=tuple(length_range),
                rotate_vertical=rotate_vertical, distributions=distributions)
            if cache_file is not None:
                save_npy_atomic(cache_file, self.skeletons)
                atomic_write(_cache_meta_path(cache_file), json.dumps(sampling))

    @property
    def metainfo(self) -> dict:
        return dict(self.METAINFO)

    def full_init(self) -> None:
        """Everything is built in ``__init__``; kept for MMEngine's dataset protocol."""

    def __len__(self) -> int:
        return self.skeletons.shape[0]

    def __getitem__(self, idx: int) -> dict:
        return dict(joints=self.skeletons[idx])

    def __repr__(self) -> str:
        source = (f'skeleton_file={self.skeleton_file!r}' if self.skeleton_file is not None
                  else f'seed={self.seed}, cache_file={self.cache_file!r}')
        return f'{self.__class__.__name__}(num_samples={len(self)}, {source})'
