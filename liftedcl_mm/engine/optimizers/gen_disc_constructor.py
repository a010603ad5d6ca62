"""Optimizer wrappers for alternating encoder ("generator") / discriminator training."""
import copy
from typing import Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from liftedcl_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GeneratorDiscriminatorOptimWrapperConstructor:
    """Build ``OptimWrapperDict(generator=..., discriminator=...)`` for LiftedCL.

    ``discriminator`` optimises the model's ``discriminator`` child; ``generator`` every
    other child with trainable parameters (backbone, projectors, lifting network). Children
    without trainable parameters (the momentum key encoder, queues) are left out. Each entry
    is built by MMEngine's ``DefaultOptimWrapperConstructor``, so it may carry its own
    ``paramwise_cfg`` (e.g. ``norm_decay_mult``). When the model has no discriminator (the
    ablations without ``loss_adv``), only ``generator`` is built.

    Every other key of an entry goes to its ``OptimWrapper``, e.g.
    ``clip_grad=dict(max_norm=10)`` clips that part's gradient norm (MMEngine's
    ``clip_grad_norm_``) before its step; the norm is then logged as ``grad_norm_generator``
    / ``grad_norm_discriminator`` (MMEngine would log both as ``grad_norm``, the second
    overwriting the first).

    Example::

        optim_wrapper = dict(
            constructor='GeneratorDiscriminatorOptimWrapperConstructor',
            generator=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                          weight_decay=1e-4)),
            discriminator=dict(type='OptimWrapper',
                               optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                              weight_decay=1e-4),
                               clip_grad=dict(max_norm=10)))
        param_scheduler = dict(generator=[...], discriminator=[...])

    Args:
        optim_wrapper_cfg (dict): With keys ``generator`` and ``discriminator``, each an
            optimizer wrapper config (``type``, ``optimizer``, optional ``paramwise_cfg``).
        paramwise_cfg (dict, optional): Applied to both entries unless one has its own.
    """

    KEYS = ('generator', 'discriminator')

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict):
            raise TypeError(f'optim_wrapper_cfg must be a dict, got {type(optim_wrapper_cfg)}')
        unknown = set(optim_wrapper_cfg) - set(self.KEYS)
        if unknown:
            raise ValueError(f'unknown optim_wrapper keys {sorted(unknown)}; '
                             f'expected {list(self.KEYS)}')
        if 'generator' not in optim_wrapper_cfg:
            raise ValueError('optim_wrapper needs a "generator" entry')
        for key, cfg in optim_wrapper_cfg.items():
            if not isinstance(cfg, dict) or 'optimizer' not in cfg:
                raise ValueError(f'optim_wrapper.{key} must be a dict with an "optimizer"')
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        self.paramwise_cfg = paramwise_cfg

    @staticmethod
    def _trainable(module: nn.Module) -> bool:
        return any(p.requires_grad for p in module.parameters())

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        disc = getattr(model, 'discriminator', None)
        parts = dict(generator=nn.Module(), discriminator=None)
        for name, child in model.named_children():
            if name == 'discriminator' or not self._trainable(child):
                continue
            # Same child names as in the model, so paramwise_cfg keys still match.
            parts['generator'].add_module(name, child)
        if len(list(parts['generator'].parameters())) == 0:
            raise ValueError('the model has no trainable parameters outside `discriminator`')
        if disc is not None and self._trainable(disc):
            holder = nn.Module()
            holder.add_module('discriminator', disc)
            parts['discriminator'] = holder
            if 'discriminator' not in self.optim_wrapper_cfg:
                raise ValueError('the model has a discriminator but optim_wrapper has no '
                                 '"discriminator" entry')
        wrappers = dict()
        for key, module in parts.items():
            if module is None:
                continue
            cfg = copy.deepcopy(self.optim_wrapper_cfg[key])
            paramwise = cfg.pop('paramwise_cfg', self.paramwise_cfg)
            cfg.setdefault('type', 'OptimWrapper')
            wrappers[key] = DefaultOptimWrapperConstructor(cfg, paramwise)(module)
            if getattr(wrappers[key], 'grad_name', None):  # set when clip_grad is given
                wrappers[key].grad_name = f'{wrappers[key].grad_name}_{key}'
        return OptimWrapperDict(**wrappers)
