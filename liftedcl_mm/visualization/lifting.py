"""Lift a few views to 3D with a LiftedCL model, without side effects on training."""
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper
from torch.nn.parallel import DistributedDataParallel


def bare_module(module: nn.Module) -> nn.Module:
    """``module`` without its (MMEngine or DDP) wrapper: calling it runs no collective."""
    while is_model_wrapper(module) or isinstance(module, DistributedDataParallel):
        module = module.module
    return module


@torch.no_grad()
def lift_views(model: nn.Module, views: torch.Tensor) -> Tuple[np.ndarray, np.ndarray]:
    """Lifted joints of ``views`` and the images the network saw, in inference mode.

    Runs ``model.data_preprocessor`` (normalisation, channel order), ``model.backbone`` and
    ``model.lifting_head`` under ``torch.no_grad`` with every submodule in eval mode (batch
    norm uses its running statistics and updates nothing), then restores each submodule's own
    ``training`` flag, so calling it in the middle of training changes no state.

    Args:
        model (nn.Module): A LiftedCL model (wrappers allowed) with a ``lifting_head``.
        views (torch.Tensor): ``(N, 3, H, W)`` uint8 views as packed by the pipeline (BGR).

    Returns:
        tuple[np.ndarray, np.ndarray]: joints ``(N, J, 3)`` float32 and the de-normalised
        inputs ``(N, H, W, 3)`` uint8 RGB.
    """
    model = bare_module(model)
    head = getattr(model, 'lifting_head', None)
    if head is None:
        raise ValueError('the model has no lifting_head (loss_adv is off): nothing to lift')
    backbone, head = bare_module(model.backbone), bare_module(head)
    preprocessor = model.data_preprocessor
    inputs = preprocessor(dict(inputs=[views], data_samples=None), False)['inputs'][0]
    modules = list(backbone.modules()) + list(head.modules())
    flags = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        joints = head(backbone(inputs))
    finally:
        for m, flag in zip(modules, flags):
            m.training = flag
    return joints.float().cpu().numpy(), denormalize(preprocessor, inputs)


def denormalize(preprocessor: nn.Module, inputs: torch.Tensor) -> np.ndarray:
    """Undo ``SelfSupDataPreprocessor``'s normalisation: ``(N, 3, H, W)`` -> uint8 RGB NHWC.

    Images are loaded BGR (MMCV's default); without the preprocessor's ``to_rgb`` they are
    still BGR here and are turned to RGB.
    """
    images = inputs.float()
    if getattr(preprocessor, '_enable_normalize', False):
        images = images * preprocessor.std + preprocessor.mean
    images = images.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    if not getattr(preprocessor, '_channel_conversion', False):
        images = images[..., ::-1]
    return np.ascontiguousarray(images)
