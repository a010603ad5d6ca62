"""lift_views: lifts in inference mode and leaves a training model exactly as it was."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from liftedcl_mm.registry import MODELS
from liftedcl_mm.utils import register_all_modules
from liftedcl_mm.visualization import lift_views

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def tiny_model(**overrides):
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')).model
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def test_lift_views_changes_no_state_and_returns_what_the_network_saw():
    model = tiny_model().train()
    model.backbone.layer1.eval()  # a submodule in its own mode stays in it
    flags = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    views = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(1))
    joints, images = lift_views(model, views)
    assert joints.shape == (3, 17, 3) and joints.dtype == np.float32
    # normalize=True (the tiny config): root at the origin, unit Frobenius norm.
    np.testing.assert_allclose(joints[:, 0], 0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(joints.reshape(3, -1), axis=1), 1, atol=1e-5)
    # The preprocessor turns BGR to RGB and normalises; undone, the input comes back.
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, views.permute(0, 2, 3, 1).numpy()[..., ::-1])
    # Nothing moved: BN running statistics, counters, weights; every module's own mode.
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert {name: m.training for name, m in model.named_modules()} == flags
    # Inference mode: the same views give the same joints whatever else is in the batch.
    again, _ = lift_views(model, views[:1])
    np.testing.assert_allclose(again[0], joints[0], atol=1e-5)


def test_lift_views_needs_a_lifting_network():
    model = tiny_model(loss_adv=dict(type='LSGANLoss', loss_weight=0.0))
    with pytest.raises(ValueError, match='no lifting_head'):
        lift_views(model, torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
