"""Image-based 3D pose head: global pooling + FC regression of (u, v, d) (Li et al. 2021)."""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS
from mmpose.registry import MODELS as MMPOSE_MODELS
from mmpose.utils.tensor_utils import to_numpy
from torch import Tensor, nn

from liftedcl_mm.codecs.root_relative_uvd import uvd_to_camera
from liftedcl_mm.registry import MODELS


@MODELS.register_module()
@MMPOSE_MODELS.register_module()
class UVDRegressionHead(BaseHead):
    """Root-relative 3D joints regressed from the pooled last backbone map.

    The H36M model of Li et al. 2021 ("Human Pose Regression with Residual Log-likelihood
    Estimation"), which the paper fine-tunes for Table 4: global average pooling of the C5
    features, one linear layer to ``(u, v, d)`` per joint (crop-normalised image position and
    root-relative depth, see ``RootRelativeUVD``) and one to their scales ``sigma`` for the RLE
    loss. As in their code the coordinate layer divides the pooled vector by its norm
    (``normalize_features``) and every linear layer starts near zero (Xavier, gain 0.01).

    ``predict`` maps the crop positions back to the frame (``input_center``/``input_scale``),
    back-projects them with the camera's pinhole intrinsics (``camera_param``) at the
    ground-truth root depth plus the predicted relative depths, makes the pose relative to its
    own root and places it at the ground-truth root (``target_root``), so MMPose's ``MPJPE``
    against ``lifting_target`` measures the root-relative error (Li et al.'s protocol). Use it in
    MMPose's ``PoseLifter`` (which adds no 2D post-processing) with
    ``PackPoseInputs(meta_keys=(..., 'input_size', 'input_center', 'input_scale', 'camera_param',
    'target_root', 'target_img_path'))``; flip test is not supported.

    Args:
        in_channels (int): Channels of the last feature map (2048 for ResNet-50).
        num_joints (int): K. Defaults to 17.
        loss (dict): Loss config; called as ``loss(pred, sigma, target, weight)`` with
            ``with_sigma`` (``RLELoss3D``), else ``loss(pred, target, weight)`` (e.g. MMPose's
            ``L1Loss(use_target_weight=True)``). Defaults to ``dict(type='RLELoss3D')``.
        decoder (dict): A ``RootRelativeUVD`` codec config.
        with_sigma (bool): Predict per-coordinate scales (needed by RLE). Defaults to True.
        normalize_features (bool): Divide the pooled features by their L2 norm before the
            coordinate layer (Li et al.). Defaults to True.
        init_cfg (dict | list, optional): Defaults to Xavier (gain 0.01) on the linear layers.
    """

    def __init__(self,
                 in_channels: int,
                 num_joints: int = 17,
                 loss: dict = dict(type='RLELoss3D'),
                 decoder: Optional[dict] = None,
                 with_sigma: bool = True,
                 normalize_features: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Xavier', layer='Linear', gain=0.01, distribution='uniform')]
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.with_sigma = with_sigma
        self.normalize_features = normalize_features
        # RLELoss3D is in both registries; MMPose losses only in MMPose's
        with DefaultScope.overwrite_default_scope('mmpose'):
            self.loss_module = MMPOSE_MODELS.build(loss)
        self.decoder = KEYPOINT_CODECS.build(decoder) if decoder is not None else None
        self.fc_coord = nn.Linear(in_channels, num_joints * 3)
        self.fc_sigma = nn.Linear(in_channels, num_joints * 3) if with_sigma else None

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        """Regress joints from the last feature map.

        Args:
            feats (Sequence[Tensor]): Backbone features; the last is (B, C, H, W).

        Returns:
            tuple: ``coords`` (B, K, 3) normalised ``(u, v, d)`` and ``sigma`` (B, K, 3) in
            (0, 1) (None without ``with_sigma``).
        """
        x = F.adaptive_avg_pool2d(feats[-1], 1).flatten(1)
        xc = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12) if self.normalize_features else x
        coords = self.fc_coord(xc).reshape(-1, self.num_joints, 3)
        sigma = None
        if self.fc_sigma is not None:
            sigma = self.fc_sigma(x).reshape(-1, self.num_joints, 3).sigmoid() + 1e-9
        return coords, sigma

    def loss(self, feats: Sequence[Tensor], batch_data_samples, train_cfg: dict = {}) -> dict:
        """``loss_kpt`` against the codec's ``keypoint_labels`` (B, K, 3), weighted by
        ``keypoint_weights`` (B, K); ``err_uvd`` logs the mean absolute label error."""
        coords, sigma = self.forward(feats)
        labels = torch.cat([d.gt_instance_labels.keypoint_labels for d in batch_data_samples])
        weights = torch.cat([d.gt_instance_labels.keypoint_weights for d in batch_data_samples])
        labels = labels.to(coords).reshape(coords.shape)
        weights = weights.to(coords).reshape(coords.shape[:2])
        if self.with_sigma:
            loss = self.loss_module(coords, sigma, labels, weights)
        else:
            loss = self.loss_module(coords, labels, weights)
        with torch.no_grad():
            err = ((coords - labels).abs().mean(-1) * weights).sum() / weights.sum().clamp_min(1)
        return dict(loss_kpt=loss, err_uvd=err)

    def predict(self, feats: Sequence[Tensor], batch_data_samples,
                test_cfg: dict = {}) -> list:
        """Camera-space joints (1, K, 3) per sample, placed at the ground-truth root."""
        if test_cfg.get('flip_test', False):
            raise ValueError('UVDRegressionHead does not support flip test: set '
                             'model.test_cfg.flip_test=False')
        if self.decoder is None:
            raise RuntimeError('UVDRegressionHead needs decoder=dict(type="RootRelativeUVD", ...) '
                               'to predict')
        coords, sigma = self.forward(feats)
        crop_uvd, _ = self.decoder.decode(to_numpy(coords))
        scores = (1 - to_numpy(sigma).mean(-1) if sigma is not None
                  else np.ones(crop_uvd.shape[:2], dtype=np.float32))
        root = self.decoder.root_index
        preds = []
        for uvd, score, sample in zip(crop_uvd, scores, batch_data_samples):
            meta = sample.metainfo
            for key in ('input_size', 'input_center', 'input_scale', 'camera_param',
                        'target_root'):
                if key not in meta:
                    raise KeyError(f'UVDRegressionHead.predict needs "{key}" in the data '
                                   "sample's metainfo: add it to PackPoseInputs(meta_keys=...)")
            size = np.asarray(meta['input_size'], dtype=np.float64)
            scale = np.asarray(meta['input_scale'], dtype=np.float64).reshape(-1)[:2]
            center = np.asarray(meta['input_center'], dtype=np.float64).reshape(-1)[:2]
            image = np.asarray(uvd, dtype=np.float64).copy()
            # crop pixels -> frame pixels (the inverse of TopdownAffine without rotation)
            image[:, :2] = image[:, :2] / size * scale + center - 0.5 * scale
            cam_param = meta['camera_param']
            target_root = np.asarray(meta['target_root'], dtype=np.float64).reshape(3)
            camera = uvd_to_camera(image, cam_param['f'], cam_param['c'], target_root[2])
            keypoints = camera - camera[root] + target_root
            preds.append(InstanceData(keypoints=keypoints[None].astype(np.float32),
                                      keypoint_scores=np.asarray(score, np.float32)[None]))
        return preds
