"""Image-aligned 3D joint labels: crop (u, v) and root-relative depth d (Li et al. 2021)."""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmpose.codecs.base import BaseKeypointCodec
from mmpose.registry import KEYPOINT_CODECS


def uvd_to_camera(uvd: np.ndarray, focal: np.ndarray, center: np.ndarray,
                  root_depth: np.ndarray) -> np.ndarray:
    """Back-project image joints with root-relative depths to camera space (pinhole, no lens
    distortion, as Li et al. 2021 and the integral-regression baselines evaluate).

    Args:
        uvd (np.ndarray): (..., K, 3): ``u, v`` in image pixels, ``d`` depth relative to the root.
        focal (np.ndarray): (2,) ``fx, fy`` in pixels.
        center (np.ndarray): (2,) principal point ``cx, cy`` in pixels.
        root_depth (np.ndarray | float): (...,) camera-space depth of the root (the unit of
            ``d``, e.g. mm).

    Returns:
        np.ndarray: (..., K, 3) camera-space joints ``X, Y, Z`` in the unit of the depths.
    """
    focal = np.asarray(focal, dtype=np.float64).reshape(2)
    center = np.asarray(center, dtype=np.float64).reshape(2)
    depth = np.asarray(root_depth, dtype=np.float64)[..., None] + uvd[..., 2]
    xy = (uvd[..., :2] - center) / focal * depth[..., None]
    return np.concatenate([xy, depth[..., None]], axis=-1)


@KEYPOINT_CODECS.register_module()
class RootRelativeUVD(BaseKeypointCodec):
    """3D labels aligned with the input crop, the targets of Li et al. 2021's H36M regression.

    Joint ``j`` of an instance is encoded as ::

        u = x_j / W - 0.5,  v = y_j / H - 0.5     (x, y: the joint in the W x H input crop)
        d = (Z_j - Z_root) / depth_range          (Z: camera-space depth of the 3D joint)

    so a person filling the crop has all three in about [-0.5, 0.5] (Li et al. normalise depth by
    the 2000 mm side of their 3D box). ``(u, v)`` follow every crop augmentation (shift, scale,
    rotation, flip) while ``d`` does not change with them, so augmented labels stay exact; a
    horizontal flip only swaps left and right, which :meth:`encode` applies to the depths too
    (MMPose's ``RandomFlip`` flips the 2D keypoints, not ``lifting_target``).

    ``encode`` reads the camera-space joints ``lifting_target`` (and ``flip``/``flip_indices``)
    from the pipeline; its ``instance_mapping_table`` keeps ``lifting_target`` in
    ``gt_instances`` for MMPose's ``MPJPE`` metric, and ``target_root`` (the camera-space root)
    is meant for ``PackPoseInputs(meta_keys=...)``: the head places its root-relative
    prediction there, so ``MPJPE`` compares root-relative poses as usual.

    Args:
        input_size (tuple[int, int]): Input crop size ``(W, H)``.
        depth_range (float): Depth normaliser, in the unit of ``lifting_target`` (2000 for mm,
            Li et al.'s 3D box). Defaults to 2000.
        root_index (int): Root joint. Defaults to 0 (H36M pelvis).
    """

    auxiliary_encode_keys = {'lifting_target', 'lifting_target_visible', 'flip', 'flip_indices'}
    # Replaces PackPoseInputs' table when GenerateTarget runs: everything the metrics read.
    instance_mapping_table = dict(
        bbox='bboxes',
        bbox_score='bbox_scores',
        bbox_scale='bbox_scales',
        keypoints='keypoints',
        keypoints_visible='keypoints_visible',
        lifting_target='lifting_target',
        lifting_target_visible='lifting_target_visible')
    label_mapping_table = dict(
        keypoint_labels='keypoint_labels', keypoint_weights='keypoint_weights')

    def __init__(self,
                 input_size: Tuple[int, int],
                 depth_range: float = 2000.,
                 root_index: int = 0) -> None:
        super().__init__()
        if not depth_range > 0:
            raise ValueError(f'RootRelativeUVD: depth_range must be > 0, got {depth_range!r}')
        self.input_size = tuple(input_size)
        self.depth_range = float(depth_range)
        self.root_index = int(root_index)

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None,
               lifting_target: Optional[np.ndarray] = None,
               lifting_target_visible: Optional[np.ndarray] = None,
               flip: Optional[bool] = None,
               flip_indices: Optional[Sequence[int]] = None) -> dict:
        """Encode one top-down instance.

        Args:
            keypoints (np.ndarray): (N, K, 2) joints in the input crop, pixels.
            keypoints_visible (np.ndarray, optional): (N, K) visibility.
            lifting_target (np.ndarray): (T, K, 3) or (K, 3) camera-space joints of the instance
                (the last of T frames is used), not flipped.
            lifting_target_visible (np.ndarray, optional): (T, K) or (K,) validity of the 3D joints.
            flip (bool, optional): Whether the crop was flipped horizontally.
            flip_indices (Sequence[int], optional): Left-right partner of each joint.

        Returns:
            dict: ``keypoint_labels`` (N, K, 3) float32 ``(u, v, d)``, ``keypoint_weights``
            (N, K) float32 and ``target_root`` (1, 3) camera-space root joint.
        """
        if lifting_target is None:
            raise ValueError('RootRelativeUVD needs the camera-space joints "lifting_target" '
                             '(e.g. from Human36mImageDataset)')
        num, num_kpt = keypoints.shape[:2]
        target = np.asarray(lifting_target, dtype=np.float32).reshape(-1, num_kpt, 3)[-1]
        if lifting_target_visible is None:
            valid3d = np.ones(num_kpt, dtype=np.float32)
        else:
            valid3d = np.asarray(lifting_target_visible, dtype=np.float32).reshape(
                -1, num_kpt)[-1]
        root = target[self.root_index].copy()
        depth = (target[:, 2] - root[2]) / self.depth_range
        if flip:
            if flip_indices is None:
                raise ValueError('RootRelativeUVD: a flipped sample needs "flip_indices"')
            # the 2D keypoints were mirrored and re-labelled; relabel the depths alike
            depth, valid3d = depth[list(flip_indices)], valid3d[list(flip_indices)]
        if keypoints_visible is None:
            keypoints_visible = np.ones((num, num_kpt), dtype=np.float32)
        w, h = self.input_size
        labels = np.empty((num, num_kpt, 3), dtype=np.float32)
        labels[..., 0] = keypoints[..., 0] / w - 0.5
        labels[..., 1] = keypoints[..., 1] / h - 0.5
        labels[..., 2] = depth[None]
        weights = (np.asarray(keypoints_visible, dtype=np.float32).reshape(num, num_kpt) *
                   (valid3d[None] > 0.5)).astype(np.float32)
        return dict(keypoint_labels=labels, keypoint_weights=weights,
                    target_root=root.reshape(1, 3))

    def decode(self, encoded: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Decode ``(u, v, d)`` to crop pixels and root-relative depth.

        Args:
            encoded (np.ndarray): (N, K, 3) normalised ``(u, v, d)``.

        Returns:
            tuple: ``keypoints`` (N, K, 3): ``x, y`` in input-crop pixels, depth relative to the
            (predicted) root in the unit of ``depth_range``; ``scores`` (N, K) ones.
        """
        encoded = np.asarray(encoded, dtype=np.float32)
        w, h = self.input_size
        keypoints = np.empty_like(encoded)
        keypoints[..., 0] = (encoded[..., 0] + 0.5) * w
        keypoints[..., 1] = (encoded[..., 1] + 0.5) * h
        depth = encoded[..., 2] * self.depth_range
        # Li et al. 2021: depths are relative to the predicted root at test time
        keypoints[..., 2] = depth - depth[..., self.root_index:self.root_index + 1]
        return keypoints, np.ones(encoded.shape[:-1], dtype=np.float32)
