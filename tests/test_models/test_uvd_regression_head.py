"""RootRelativeUVD codec, RLELoss3D and UVDRegressionHead (image-based 3D pose, Table 4)."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample

import liftedcl_mm  # noqa: F401
from liftedcl_mm.codecs import RootRelativeUVD, uvd_to_camera
from liftedcl_mm.models.losses.rle_loss_3d import AffineCouplingFlow, RLELoss3D

FLIP = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]  # MMPose H36M flip_indices


def _camera_joints(seed=0):
    rng = np.random.default_rng(seed)
    joints = rng.uniform(-800, 800, (17, 3))
    joints[:, 2] += 5000.0
    return joints


def _project(joints, focal, center):
    return joints[:, :2] / joints[:, 2:] * focal + center


def test_uvd_to_camera_inverts_the_pinhole_projection():
    joints = _camera_joints()
    focal, center = np.array([1145.0, 1144.0]), np.array([512.0, 515.0])
    uvd = np.concatenate([_project(joints, focal, center),
                          (joints[:, 2] - joints[0, 2])[:, None]], 1)
    back = uvd_to_camera(uvd, focal, center, joints[0, 2])
    np.testing.assert_allclose(back, joints, atol=1e-6)


def test_codec_encode_decode_and_flip():
    codec = RootRelativeUVD(input_size=(64, 48), depth_range=2000.)
    joints = _camera_joints()
    kpts = np.random.default_rng(1).uniform(0, 48, (1, 17, 2))
    enc = codec.encode(kpts, np.ones((1, 17)), lifting_target=joints[None],
                       lifting_target_visible=np.ones((1, 17)))
    labels = enc['keypoint_labels']
    assert labels.shape == (1, 17, 3) and labels.dtype == np.float32
    np.testing.assert_allclose(labels[0, :, 0], kpts[0, :, 0] / 64 - 0.5, rtol=1e-6)
    np.testing.assert_allclose(labels[0, :, 2], (joints[:, 2] - joints[0, 2]) / 2000., rtol=1e-5)
    np.testing.assert_allclose(enc['target_root'], joints[:1], rtol=1e-6)
    assert enc['keypoint_weights'].shape == (1, 17)
    decoded, scores = codec.decode(labels)
    np.testing.assert_allclose(decoded[..., :2], kpts, atol=1e-4)
    np.testing.assert_allclose(decoded[0, :, 2], joints[:, 2] - joints[0, 2], atol=1e-2)
    assert scores.shape == (1, 17)

    # a flipped crop relabels left/right: depths follow the 2D relabelling
    flipped = codec.encode(kpts, None, lifting_target=joints[None], flip=True, flip_indices=FLIP)
    np.testing.assert_allclose(flipped['keypoint_labels'][0, :, 2], labels[0, FLIP, 2])
    # an invalid 3D joint gets weight 0 (and follows its flip partner)
    valid = np.ones((1, 17))
    valid[0, 1] = 0
    weights = codec.encode(kpts, None, lifting_target=joints[None], lifting_target_visible=valid,
                           flip=True, flip_indices=FLIP)['keypoint_weights']
    assert weights[0, 4] == 0 and weights[0, 1] == 1
    with pytest.raises(ValueError, match='lifting_target'):
        codec.encode(kpts)


def test_flow_is_a_normalised_density():
    torch.manual_seed(0)
    flow = AffineCouplingFlow(dim=3)
    with torch.no_grad():  # a random flow, not only the near-identity start
        for net in list(flow.scale_nets) + list(flow.shift_nets):
            net[-1 if isinstance(net[-1], torch.nn.Linear) else -2].weight.normal_(0, 0.3)
        axis = torch.linspace(-8, 8, 81)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing='ij'), -1).reshape(-1, 3)
        mass = flow.log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 3
    assert mass.item() == pytest.approx(1.0, abs=0.02)
    assert flow.masks.tolist()[:2] == [[0, 0, 1], [1, 1, 0]]


def test_rle_loss_prefers_accurate_confident_predictions():
    torch.manual_seed(0)
    loss = RLELoss3D()
    target = torch.randn(4, 17, 3) * 0.2
    weight = torch.ones(4, 17)
    exact = loss(target.clone(), torch.full_like(target, 0.05), target, weight)
    off = loss(target + 0.3, torch.full_like(target, 0.05), target, weight)
    assert torch.isfinite(exact) and exact < off
    # joints with weight 0 do not count
    w0 = weight.clone()
    w0[:, 5] = 0
    pred = target.clone()
    pred[:, 5] += 10
    assert torch.allclose(loss(pred, torch.full_like(target, 0.05), target, w0),
                          loss(target, torch.full_like(target, 0.05), target, w0))
    with pytest.raises(ValueError, match='RLELoss3D'):
        loss(target[..., :2], target[..., :2], target[..., :2])


def _head(in_channels=32, **kwargs):
    from mmpose.registry import MODELS
    cfg = dict(type='UVDRegressionHead', in_channels=in_channels, num_joints=17,
               decoder=dict(type='RootRelativeUVD', input_size=(64, 64)), **kwargs)
    with DefaultScope.overwrite_default_scope('mmpose'):
        head = MODELS.build(cfg)
    head.init_weights()
    return head


def _data_sample(joints, focal, center, bbox_center, bbox_size, labels):
    sample = PoseDataSample()
    sample.set_metainfo(dict(
        input_size=(64, 64), input_center=bbox_center, input_scale=np.array([bbox_size] * 2),
        camera_param=dict(f=focal.reshape(2, 1), c=center.reshape(2, 1)),
        target_root=joints[:1].astype(np.float32)))
    sample.gt_instance_labels = InstanceData(
        keypoint_labels=torch.as_tensor(labels)[None], keypoint_weights=torch.ones(1, 17))
    return sample


def test_head_loss_backward_and_exact_prediction(monkeypatch):
    head = _head()
    feats = (torch.randn(2, 32, 2, 2, requires_grad=True), )
    focal, center = np.array([1145.0, 1145.0]), np.array([500.0, 500.0])
    codec = head.decoder
    samples, truths = [], []
    for seed in range(2):
        joints = _camera_joints(seed)
        uv = _project(joints, focal, center)
        bbox_center = uv.mean(0)
        size = 1.2 * (uv.max(0) - uv.min(0)).max()
        crop = (uv - bbox_center + size / 2) / size * 64  # TopdownAffine without rotation
        labels = codec.encode(crop[None], lifting_target=joints[None])['keypoint_labels'][0]
        samples.append(_data_sample(joints, focal, center, bbox_center, size, labels))
        truths.append(joints)

    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_kpt', 'err_uvd'} and torch.isfinite(losses['loss_kpt'])
    losses['loss_kpt'].backward()
    assert feats[0].grad is not None and head.fc_coord.weight.grad.abs().sum() > 0
    assert any(p.grad is not None for p in head.loss_module.parameters())  # the flow learns too

    # a head that outputs the labels predicts the ground truth in camera space
    labels = torch.stack([s.gt_instance_labels.keypoint_labels[0] for s in samples])
    monkeypatch.setattr(head, 'forward', lambda f: (labels, torch.full_like(labels, 0.1)))
    preds = head.predict(feats, samples)
    for pred, joints in zip(preds, truths):
        assert pred.keypoints.shape == (1, 17, 3)
        np.testing.assert_allclose(pred.keypoints[0], joints, atol=0.5)  # mm (float32 labels)
        np.testing.assert_allclose(pred.keypoint_scores, 0.9, atol=1e-6)


def test_head_needs_metainfo_and_refuses_flip_test():
    head = _head(with_sigma=False, loss=dict(type='L1Loss', use_target_weight=True))
    assert head.fc_sigma is None
    feats = (torch.randn(1, 32, 2, 2), )
    sample = PoseDataSample()
    sample.set_metainfo(dict(input_size=(64, 64)))
    with pytest.raises(KeyError, match='input_center'):
        head.predict(feats, [sample])
    with pytest.raises(ValueError, match='flip'):
        head.predict(feats, [sample], test_cfg=dict(flip_test=True))
    sample.gt_instance_labels = InstanceData(keypoint_labels=torch.zeros(1, 17, 3),
                                             keypoint_weights=torch.ones(1, 17))
    assert torch.isfinite(head.loss(feats, [sample])['loss_kpt'])
