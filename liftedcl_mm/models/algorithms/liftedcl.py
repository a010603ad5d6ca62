"""LiftedCL: contrastive pre-training lifted to 3D (Chen et al., ICLR 2023)."""
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.optim import OptimWrapperDict
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch.nn.parallel import DistributedDataParallel

from liftedcl_mm.registry import MODELS
from ..utils import (MomentumEncoder, NonFiniteGuard, PriorBank, align_shared_regions,
                     view_geometry)

_TERMS = ('loss_inv', 'loss_equiv', 'loss_adv')


def _unwrap(module: Optional[nn.Module]) -> Optional[nn.Module]:
    # MMSeparateDistributedDataParallel wraps each child in DDP; EMA and D(X) need the bare one
    return module.module if isinstance(module, DistributedDataParallel) else module


def _scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` in the forward pass; its gradient multiplied by ``factor`` in the backward."""
    if factor == 1.0:
        return x
    # x - x.detach() is exactly 0 in the forward pass, so the forward value is x to the bit
    return x.detach() if factor == 0.0 else x.detach() + (x - x.detach()) * factor


def _loss_weight(cfg: Optional[Union[dict, nn.Module]], name: str) -> float:
    weight = 0.0 if cfg is None else (
        cfg.loss_weight if isinstance(cfg, nn.Module) else cfg.get('loss_weight', 1.0))
    if not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight < 0:
        raise ValueError(f'model.{name}.loss_weight must be a finite number >= 0, got {weight!r}')
    return float(weight)


@MODELS.register_module()
class LiftedCL(BaseSelfSupervisor):
    """LiftedCL: invariant + equivariant contrastive learning and adversarial 3D lifting.

    Encoder loss ``loss_inv + loss_equiv + loss_adv_g``, each term with its ``loss_weight``
    (paper: ``lambda1 = lambda2 = 0.5``). A term of weight 0 (or no config) is off: neither
    it nor the modules only it needs are built (the ablations of Table 8). ``train_step``:

    1. query view: backbone -> ``z_q``, equivariant map ``F_q``, lifted joints ``X``
       (N, J, 3); key view through the momentum encoder -> ``z_k``, ``F_k``;
    2. encoder losses: InfoNCE of ``z_q`` vs ``z_k``, dense InfoNCE of ``F_q``/``F_k`` over
       their shared region resampled to ``align_size``^2 locations (negatives: pooled
       ``F_k``), ``LSGAN(D(X), real)`` with D's parameters constant; D's losses
       ``LSGAN(D(prior), real)`` and ``LSGAN(D(X.detach()), fake)``;
    3. encoder step, then D step, both with D as it was at the start of the iteration (as
       the authors' code), so a non-finite iteration can be skipped whole;
    4. with ``lifting_steps`` or ``disc_steps`` > 1, further lifting-head and/or D steps on
       the batch's detached backbone features (each D step with its own prior draw);
    5. momentum update of the key encoder (MoCo does it at the start of the next
       iteration: same keys), then enqueue.

    Args:
        backbone (dict): Backbone config (ResNet-50 in the paper).
        neck (dict, optional): Invariant projector (``MoCoV2Neck`` 2048-2048-128).
        equiv_neck (dict, optional): Equivariant projector (``EquivariantNeck``).
        lifting_head (dict, optional): Lifting network (``LiftingHead``).
        discriminator (dict, optional): Skeleton discriminator (``KCSDiscriminator``).
        loss_inv (dict, optional): ``InfoNCELoss`` config; its ``loss_weight`` is lambda1.
        loss_equiv (dict, optional): ``EquivariantInfoNCELoss`` config; weight lambda1.
        loss_adv (dict, optional): ``LSGANLoss`` for the encoder; weight lambda2.
        loss_disc (dict, optional): ``LSGANLoss`` for D's real and fake terms. Defaults to
            weight 1: the authors' ``(D(prior) - 1)^2 + D(X)^2``.
        queue_len (int): Length of both queues. Defaults to 16384.
        feat_dim (int): Size of the invariant and equivariant vectors. Defaults to 128.
        momentum (float): EMA momentum of the key encoder (MMEngine convention,
            ``1 - 0.999``). Defaults to 0.001.
        align_size (int): Side of the aligned shared region. Defaults to 16.
        align_cell_centres (str): ``align_shared_regions``' ``cell_centres``. Defaults to 'uniform'.
        prior (dict, optional): ``SkeletonPriorDataset`` config; D's "real" skeletons
            (a ``PriorBank``). Needed when ``loss_adv`` is on.
        lifting_grad_clip (float, optional): Max norm of the lifting head's gradient in each
            encoder step, on top of the generator optimiser's own ``clip_grad`` (which bounds
            the whole encoder: contrastive terms included). None: off (the authors').
            Measured alone (``tools/analysis/adversarial_balance.py``): with a standardised
            discriminator and BN in the lifting head, 0.1 keeps the lifted poses varied and
            mostly plausible, where without it they collapse to one pose. Defaults to None.
        adv_backbone_grad (float): Factor on the adversarial gradient that reaches the backbone
            through the lifting head (the lifting head's own gradient is unchanged); 0 trains
            the lifting head on detached features. Defaults to 1.0 (the authors').
        adv_backbone_warmup (int): Iterations over which that factor ramps up linearly from
            0 (the lifting head's own gradient is never ramped). Defaults to 0 (no ramp).
        lifting_steps (int): Lifting-head updates per iteration. The first is the
            iteration's own (its gradient reaches the backbone); each further one runs the
            lifting head on the batch's detached backbone features and steps only it (the
            generator optimiser leaves parameters without a gradient alone). The head is a
            small MLP: the generator side of the game gets more updates per backbone step at
            little cost. Defaults to 1 (the authors').
        disc_steps (int): D updates per iteration, each further one on the lifting head's
            current output for the batch and a fresh prior draw. The logged losses are the
            iteration's own; a logged gradient norm is the wrapper's last step's. Defaults
            to 1 (the authors').
        channels_last (bool): Run the encoders in ``torch.channels_last`` memory format
            (~17% faster ResNet-50 steps on CPU; checkpoints unaffected). Defaults to True.
        nonfinite (str): On a non-finite loss, ``'raise'`` ``FloatingPointError`` naming
            the terms and the iteration, or ``'skip'`` the iteration (no change to
            parameters, BN statistics, queues, key encoder; ``nonfinite_skipped`` counts).
        pretrained (str, optional): Checkpoint to initialise from. Defaults to None.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``.
        init_cfg (dict | list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 equiv_neck: Optional[dict] = None,
                 lifting_head: Optional[dict] = None,
                 discriminator: Optional[dict] = None,
                 loss_inv: Optional[dict] = None,
                 loss_equiv: Optional[dict] = None,
                 loss_adv: Optional[dict] = None,
                 loss_disc: Optional[dict] = dict(type='LSGANLoss', loss_weight=1.0),
                 queue_len: int = 16384,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 align_size: int = 16,
                 align_cell_centres: str = 'uniform',
                 prior: Optional[dict] = None,
                 lifting_grad_clip: Optional[float] = None,
                 adv_backbone_grad: float = 1.0,
                 adv_backbone_warmup: int = 0,
                 lifting_steps: int = 1,
                 disc_steps: int = 1,
                 channels_last: bool = True,
                 nonfinite: str = 'raise',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        weights = {t: _loss_weight(c, t) for t, c in zip(_TERMS, (loss_inv, loss_equiv, loss_adv))}
        if all(w == 0 for w in weights.values()):
            raise ValueError('LiftedCL needs at least one of loss_inv, loss_equiv, loss_adv '
                             f'with loss_weight > 0, got {weights}')
        self.use_inv, self.use_equiv, self.use_adv = (weights[t] > 0 for t in _TERMS)
        needs = dict(neck=('loss_inv', neck), equiv_neck=('loss_equiv', equiv_neck),
                     lifting_head=('loss_adv', lifting_head), prior=('loss_adv', prior),
                     discriminator=('loss_adv', discriminator), loss_disc=('loss_adv', loss_disc))
        for key, (term, cfg) in needs.items():
            if weights[term] > 0 and cfg is None:
                raise ValueError(f'{term} has loss_weight > 0 but `{key}` is not configured')
        for name, value in (('queue_len', queue_len), ('align_size', align_size),
                            ('feat_dim', feat_dim)):  # --cfg-options may hand over strings
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f'model.{name} must be an integer >= 1, got {value!r}')
        if not isinstance(momentum, (int, float)) or not 0.0 < momentum < 1.0:
            raise ValueError(f'model.momentum must be a number in (0, 1), got {momentum!r}')
        self.guard = NonFiniteGuard(nonfinite, owner='LiftedCL')

        super().__init__(backbone=backbone, neck=neck if self.use_inv else None,
                         pretrained=pretrained, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)

        def build(cfg, used):
            return (cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)) if used else None

        self.equiv_neck = build(equiv_neck, self.use_equiv)
        self.lifting_head = build(lifting_head, self.use_adv)
        self.discriminator = build(discriminator, self.use_adv)
        self.loss_inv = build(loss_inv, self.use_inv)
        self.loss_equiv = build(loss_equiv, self.use_equiv)
        self.loss_adv = build(loss_adv, self.use_adv)
        self.loss_disc = build(loss_disc, self.use_adv)
        self.queue_len, self.feat_dim = int(queue_len), int(feat_dim)
        self.align_size, self.align_cell_centres = int(align_size), align_cell_centres
        self.channels_last = bool(channels_last)
        if lifting_grad_clip is not None and not float(lifting_grad_clip) > 0:
            raise ValueError(f'lifting_grad_clip must be > 0 or None, got {lifting_grad_clip}')
        self.lifting_grad_clip = (float(lifting_grad_clip)
                                  if lifting_grad_clip is not None and self.use_adv else None)
        if not isinstance(adv_backbone_grad, (int, float)) or not 0.0 <= adv_backbone_grad <= 1.0:
            raise ValueError(f'adv_backbone_grad must be a number in [0, 1], got '
                             f'{adv_backbone_grad!r}')
        self.adv_backbone_grad = float(adv_backbone_grad)
        if not isinstance(adv_backbone_warmup, (int, np.integer)) or adv_backbone_warmup < 0:
            raise ValueError(f'adv_backbone_warmup must be an integer >= 0, got '
                             f'{adv_backbone_warmup!r}')
        self.adv_backbone_warmup = int(adv_backbone_warmup)
        for name, value in (('lifting_steps', lifting_steps), ('disc_steps', disc_steps)):
            if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                    or value < 1):
                raise ValueError(f'model.{name} must be an integer >= 1, got {value!r}')
        self.lifting_steps, self.disc_steps = ((int(lifting_steps), int(disc_steps))
                                               if self.use_adv else (1, 1))
        # before the key encoder copies the query encoder, so both use the same layout
        for module in (self.backbone, self.equiv_neck) if self.channels_last else ():
            if module is not None:
                module.to(memory_format=torch.channels_last)

        self.encoder_k = (MomentumEncoder(self._query_encoder(), float(momentum))
                          if self.use_inv or self.use_equiv else None)
        # the key encoder's heads, by index in the layout of _query_encoder
        self._key_heads = {k: i for k, i, on in (('inv', 1, self.use_inv),
                                                 ('equiv', 2, self.use_equiv)) if on}
        queue = dict(type='FeatureQueue', dim=self.feat_dim, length=self.queue_len)
        self.queue_inv, self.queue_equiv = (build(queue, u) for u in (self.use_inv, self.use_equiv))

        # Iterations seen by train_step (skipped ones included), restored with the checkpoint:
        # the prior draw is a pure function of (seed, iteration, rank).
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.long))
        self.register_buffer('nonfinite_skipped', torch.zeros((), dtype=torch.long))
        num_joints = _unwrap(self.lifting_head).num_joints if self.use_adv else None
        self.prior_bank = (PriorBank.build(prior, num_joints, 'lifting_head.num_joints')
                           if self.use_adv else None)
        if self.use_adv and getattr(self.discriminator, 'num_joints', num_joints) != num_joints:
            raise ValueError(f'discriminator.num_joints ({self.discriminator.num_joints}) '
                             f'!= lifting_head.num_joints ({num_joints})')
        if self.use_adv and getattr(self.discriminator, 'standardize', False):
            self.discriminator.set_input_statistics(self.prior_bank.skeletons)

    @property
    def prior_skeletons(self) -> Optional[torch.Tensor]:
        """The prior's skeletons (P, J, 3) (not checkpointed); None without ``loss_adv``."""
        return None if self.prior_bank is None else self.prior_bank.skeletons

    def _query_encoder(self) -> nn.Sequential:
        """The modules the key encoder mirrors, in a fixed layout (bare, not DDP)."""
        return nn.Sequential(*(nn.Identity() if m is None else _unwrap(m)
                               for m in (self.backbone, self.neck, self.equiv_neck)))

    def _forward_encoder(self, inputs: List[torch.Tensor],
                         data_samples: List[DataSample]) -> Tuple[Dict, Dict]:
        """Encoder losses of one batch. Returns ``(losses, state)``; no update is made."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 1:
            raise TypeError('LiftedCL expects inputs as a list of view tensors (N, 3, H, W)')
        contrastive = self.use_inv or self.use_equiv
        if contrastive and len(inputs) < 2:
            raise ValueError(f'loss_inv/loss_equiv need 2 views, got {len(inputs)}')
        im_q = self._to_memory_format(inputs[0])
        num, world = im_q.shape[0], get_world_size()
        if contrastive and num * world > self.queue_len:
            raise ValueError(f'queue_len ({self.queue_len}) must be >= the global batch size '
                             f'({num} x {world} ranks = {num * world})')
        losses, state = dict(), dict()
        feats = self.backbone(im_q)
        if self.use_adv:
            state['joints'] = self.lifting_head(
                [_scale_grad(feats[-1], self._adv_grad_factor())])
            if max(self.lifting_steps, self.disc_steps) > 1:
                state['adv_feats'] = feats[-1].detach()
        if contrastive:
            self.encoder_k.start(self._query_encoder())
            keys = self.encoder_k.encode(self._to_memory_format(inputs[1]), self._key_heads)
        if self.use_inv:
            losses['loss_inv'], state['acc_inv'] = self.loss_inv(
                self.neck(feats)[0], keys['inv'], self.queue_inv.queue, return_accuracy=True)
            state['key_inv'] = keys['inv']
        if self.use_equiv:
            map_q = self.equiv_neck(feats)[0]
            bboxes, flips = view_geometry(data_samples, map_q.device)
            aligned_q, aligned_k, valid = align_shared_regions(
                map_q, keys['equiv'], bboxes[:, 0], bboxes[:, 1], flips[:, 0], flips[:, 1],
                self.align_size, cell_centres=self.align_cell_centres,
                view_size=tuple(inputs[0].shape[-2:]))
            # one row per aligned location: (N * S * S, C)
            rows_q, rows_k = (m.permute(0, 2, 3, 1).flatten(0, 2) for m in (aligned_q, aligned_k))
            valid_rows = valid.repeat_interleave(self.align_size**2)
            losses['loss_equiv'] = self.loss_equiv(rows_q, rows_k, self.queue_equiv.queue,
                                                   valid_rows)
            state['key_equiv'] = keys['equiv'].float().mean(dim=(2, 3))
            state['num_invalid_pairs'] = (~valid).sum()
        if self.use_adv:
            losses['loss_adv_g'] = self._generator_adv_loss(state['joints'])
        return losses, state

    def _generator_adv_loss(self, joints: torch.Tensor) -> torch.Tensor:
        """``loss_adv(D(joints), real)`` with D's parameters as constants: it moves only
        the encoder. ``joints``: (N, J, 3)."""
        disc = _unwrap(self.discriminator)
        score = torch.func.functional_call(
            disc, {n: p.detach() for n, p in disc.named_parameters()}, (joints, ))
        return self.loss_adv(score, True)

    def _adv_grad_factor(self) -> float:
        """``adv_backbone_grad``, ramped up linearly over the first ``adv_backbone_warmup``
        iterations (``num_steps`` is checkpointed: a resumed run continues the ramp)."""
        if self.adv_backbone_warmup == 0:
            return self.adv_backbone_grad
        return self.adv_backbone_grad * min(1.0, int(self.num_steps) / self.adv_backbone_warmup)

    def _encoder_update(self, wrapper, loss: torch.Tensor) -> None:
        """``wrapper.update_params(loss)``, with the lifting head's gradient clipped first."""
        if self.lifting_grad_clip is None:
            wrapper.update_params(loss)
            return
        # update_params' steps, the clip between backward and step
        wrapper.backward(wrapper.scale_loss(loss))
        if wrapper.should_update():
            # AMP: the gradients are still multiplied by the loss scale here
            scaler = getattr(wrapper, 'loss_scaler', None)
            scale = float(scaler.get_scale()) if scaler is not None else 1.0
            torch.nn.utils.clip_grad_norm_(_unwrap(self.lifting_head).parameters(),
                                           self.lifting_grad_clip * scale)
            wrapper.step()
            wrapper.zero_grad()

    def _to_memory_format(self, images: torch.Tensor) -> torch.Tensor:
        return (images.contiguous(memory_format=torch.channels_last)
                if self.channels_last else images)

    def _discriminator_losses(self, joints: torch.Tensor,
                              real: torch.Tensor) -> Dict[str, torch.Tensor]:
        """D's LSGAN terms and accuracy on prior ``real`` and lifted ``joints`` (N, J, 3)."""
        group = getattr(_unwrap(self.discriminator), 'minibatch_std_group', 0)
        if group and joints.shape[0] % group:
            raise ValueError(f'discriminator.minibatch_std_group ({group}) must divide the '
                             f'batch size ({joints.shape[0]}): real and fake skeletons must '
                             'not share a group')
        real = real.to(device=joints.device, dtype=joints.dtype)
        # Real and fake in one pass (D has no batch-coupled layers): one DDP forward per backward
        scores = self.discriminator(torch.cat([real, joints.detach()], dim=0))
        score_real, score_fake = scores[:joints.shape[0]], scores[joints.shape[0]:]
        d_acc = torch.cat([score_real > 0.5, score_fake < 0.5]).float().mean()
        return dict(loss_d_real=self.loss_disc(score_real, True),
                    loss_d_fake=self.loss_disc(score_fake, False), d_acc=d_acc.detach())

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Encoder losses (``loss_inv``, ``loss_equiv``, ``loss_adv_g``) of a batch; no update.

        Args:
            inputs (List[torch.Tensor]): Views, each (N, 3, H, W); view 0 query, 1 key.
            data_samples (List[DataSample]): With ``view_bboxes`` (V, 4), ``view_flips``
                (V,) metainfo (needed by ``loss_equiv``).
        """
        return self._forward_encoder(inputs, data_samples)[0]

    def _extra_adv_steps(self, feats: torch.Tensor, gen_wrapper, disc_wrapper,
                         step: int) -> None:
        """The iteration's further lifting-head and D steps on the detached backbone
        ``feats`` (N, C, H, W): sub-step ``i`` steps the lifting head if
        ``i < lifting_steps`` (only it has a gradient, so the backbone and the necks stay as
        the iteration's own step left them), then D if ``i < disc_steps``, on the prior's
        draw ``(step, i)`` and the lifted joints from before the head's step.

        A non-finite sub-step raises, or in ``'skip'`` mode is not applied, ends the extra
        steps, restores the lifting head's and D's buffers and counts in
        ``nonfinite_skipped``.
        """
        for sub in range(1, max(self.lifting_steps, self.disc_steps)):
            train_g, train_d = sub < self.lifting_steps, sub < self.disc_steps
            snapshot = self.guard.snapshot([self.lifting_head, self.discriminator])
            checked = dict()
            with gen_wrapper.optim_context(self.lifting_head), torch.set_grad_enabled(train_g):
                joints = self.lifting_head([feats])
                if train_g:
                    checked['loss_adv_g'] = self._generator_adv_loss(joints)
            if train_d:
                real = self.prior_bank.draw(joints.shape[0], step, substep=sub)
                with disc_wrapper.optim_context(self.discriminator):
                    d_losses = self._discriminator_losses(joints, real)
                checked.update(loss_d_real=d_losses['loss_d_real'],
                               loss_d_fake=d_losses['loss_d_fake'])
            if self.guard.check(checked, step):
                snapshot.restore()
                self.nonfinite_skipped += 1
                return
            if train_g:
                self._encoder_update(gen_wrapper, checked['loss_adv_g'])
            if train_d:
                disc_wrapper.update_params(checked['loss_d_real'] + checked['loss_d_fake'])

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One alternating encoder/discriminator iteration.

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapperDict): ``generator`` and (with ``loss_adv``)
                ``discriminator`` wrappers.

        Returns:
            dict: ``loss`` (the encoder's), the enabled terms, ``loss_d_real``,
            ``loss_d_fake``, ``d_acc``, ``acc_inv``, ``num_invalid_pairs``, and with
            ``nonfinite='skip'`` ``nonfinite_skipped``.
        """
        if not isinstance(optim_wrapper, OptimWrapperDict) or 'generator' not in optim_wrapper:
            raise TypeError('LiftedCL.train_step needs an OptimWrapperDict with a "generator" '
                            'entry (use GeneratorDiscriminatorOptimWrapperConstructor)')
        if self.use_adv and 'discriminator' not in optim_wrapper:
            raise KeyError('loss_adv is on but optim_wrapper has no "discriminator" entry')
        gen_wrapper = optim_wrapper['generator']
        disc_wrapper = optim_wrapper['discriminator'] if self.use_adv else None
        if max(self.lifting_steps, self.disc_steps) > 1 and any(
                getattr(w, '_accumulative_counts', 1) != 1 for w in (gen_wrapper, disc_wrapper)):
            # an extra step would only accumulate, and then step the whole encoder
            raise ValueError('model.lifting_steps / disc_steps > 1 need optim_wrapper '
                             'accumulative_counts=1')
        step = int(self.num_steps)
        # Taken before the forward pass, which updates BN statistics.
        snapshot = self.guard.snapshot([self.backbone, self.neck, self.equiv_neck,
                                        self.lifting_head, self.discriminator, self.encoder_k])

        with gen_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses, state = self._forward_encoder(data['inputs'], data['data_samples'])
        d_losses = dict()
        if self.use_adv:
            real = self.prior_bank.draw(state['joints'].shape[0], step)
            with disc_wrapper.optim_context(self.discriminator):
                d_losses = self._discriminator_losses(state['joints'], real)
        total = sum(losses.values())

        checked = {k: v for k, v in dict(losses, **d_losses).items() if k.startswith('loss')}
        if self.guard.check(checked, step):
            snapshot.restore()
            self.nonfinite_skipped += 1
        else:
            self._encoder_update(gen_wrapper, total)
            if self.use_adv:
                disc_wrapper.update_params(d_losses['loss_d_real'] + d_losses['loss_d_fake'])
                if 'adv_feats' in state:
                    self._extra_adv_steps(state['adv_feats'], gen_wrapper, disc_wrapper, step)
            with torch.no_grad():
                if self.encoder_k is not None:
                    self.encoder_k.update_parameters(self._query_encoder())
                if self.use_inv:
                    self.queue_inv.enqueue(state['key_inv'])
                if self.use_equiv:
                    self.queue_equiv.enqueue(state['key_equiv'])
        self.num_steps += 1

        log_vars = dict(loss=total.detach())
        log_vars.update({k: v.detach() for k, v in dict(losses, **d_losses).items()})
        log_vars.update({k: state[k].float() for k in ('acc_inv', 'num_invalid_pairs')
                         if k in state})
        if self.guard.mode == 'skip':
            log_vars['nonfinite_skipped'] = self.nonfinite_skipped.float()
        return log_vars
