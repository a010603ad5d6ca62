"""LiftedCL: contrastive pre-training lifted to 3D (Chen et al., ICLR 2023)."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.model import ExponentialMovingAverage
from mmengine.optim import OptimWrapperDict
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.structures import DataSample
from torch.nn.parallel import DistributedDataParallel

from liftedcl_mm.registry import DATASETS, MODELS
from ..utils.view_alignment import align_shared_regions

_TERMS = ('loss_inv', 'loss_equiv', 'loss_adv')


def _unwrap(module: Optional[nn.Module]) -> Optional[nn.Module]:
    # MMSeparateDistributedDataParallel wraps each child in DDP; EMA and the frozen
    # adversarial pass need the bare module.
    return module.module if isinstance(module, DistributedDataParallel) else module


def _loss_weight(cfg: Optional[Union[dict, nn.Module]], name: str) -> float:
    if cfg is None:
        return 0.0
    weight = float(getattr(cfg, 'loss_weight', None) if isinstance(cfg, nn.Module)
                   else cfg.get('loss_weight', 1.0))
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f'{name}.loss_weight must be a finite number >= 0, got {weight}')
    return weight


@contextmanager
def _frozen(module: nn.Module):
    """Parameters of ``module`` do not require grad inside (so no grad reaches them)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@MODELS.register_module()
class LiftedCL(BaseSelfSupervisor):
    """LiftedCL: invariant + equivariant contrastive learning and adversarial 3D lifting.

    The encoder loss is ``loss_inv + loss_equiv + loss_adv_g`` where each term carries its
    ``loss_weight`` (the paper: ``lambda1 = lambda2 = 0.5``). A term with weight 0 (or no
    config) is switched off: it is not computed and the modules only it needs are not built
    (the ablations of Table 8 are expressed that way).

    ``train_step`` takes an ``OptimWrapperDict`` with ``generator`` (all trainable
    parameters except the discriminator's) and, when ``loss_adv`` is on, ``discriminator``.
    One iteration:

    1. one forward of the query view: backbone -> invariant vector ``z_q``, equivariant map
       ``F_q``, lifted joints ``X`` (N, J, 3); the key view through the momentum encoder
       (shuffle-BN under DDP) -> ``z_k``, ``F_k``;
    2. encoder losses: InfoNCE of ``z_q`` vs ``z_k`` (invariant queue), dense InfoNCE of the
       shared regions of ``F_q``/``F_k`` aligned to ``align_size``^2 locations (negatives:
       queue of pooled ``F_k``), ``LSGAN(D(X), real)`` with D frozen;
       discriminator losses ``LSGAN(D(prior), real)`` and ``LSGAN(D(X.detach()), fake)``;
    3. encoder step, then discriminator step. Both use the discriminator as it was at the
       start of the iteration (as the authors' code does: encoder step, then D step on the
       same detached X), which lets a non-finite iteration be skipped as a whole;
    4. momentum update of the key encoder from the updated query encoder, then enqueue.

    The momentum update of step 4 is what MoCo does at the start of the next iteration
    (``ema <- (1 - m) * ema + m * query``, ``m = momentum``), so keys are computed by the same
    encoder; on the very first iteration the key encoder is first set to a copy of the query
    encoder (``ExponentialMovingAverage`` copies on its first update), after
    ``init_weights``/pre-trained loading.

    Args:
        backbone (dict): Backbone config (ResNet-50 in the paper).
        neck (dict, optional): Invariant projector (``MoCoV2Neck`` 2048-2048-128).
        equiv_neck (dict, optional): Equivariant projector (``EquivariantNeck``).
        lifting_head (dict, optional): Lifting network (``LiftingHead``).
        discriminator (dict, optional): Skeleton discriminator (``KCSDiscriminator``).
        loss_inv (dict, optional): ``InfoNCELoss`` config; its ``loss_weight`` is lambda1.
        loss_equiv (dict, optional): ``EquivariantInfoNCELoss`` config; weight lambda1.
        loss_adv (dict, optional): ``LSGANLoss`` for the encoder; weight lambda2.
        loss_disc (dict, optional): ``LSGANLoss`` for the discriminator's real and fake
            terms. Defaults to ``dict(type='LSGANLoss', loss_weight=0.5)`` (the LSGAN
            objective ``0.5 * [(D(y) - 1)^2 + D(X)^2]``).
        queue_len (int): Length of both queues. Defaults to 16384.
        feat_dim (int): Size of the invariant and equivariant vectors. Defaults to 128.
        momentum (float): EMA momentum ``m`` of the key encoder (MMEngine convention,
            ``1 - 0.999``). Defaults to 0.001.
        align_size (int): Side of the aligned shared region. Defaults to 16.
        prior (dict, optional): ``SkeletonPriorDataset`` config (DATASETS); the "real"
            skeletons of the discriminator. Needed when ``loss_adv`` is on.
        channels_last (bool): Run the encoders (backbone, equivariant projector, key encoder)
            in ``torch.channels_last`` memory format: ~17% faster ResNet-50 steps measured on
            CPU (the usual layout for AMP on GPUs too; not measured here). Checkpoints are
            unaffected (same keys and values). Defaults to True.
        nonfinite (str): ``'raise'``: a non-finite loss raises ``FloatingPointError`` naming
            the terms and the iteration; ``'skip'``: the iteration changes nothing (parameters,
            BN statistics, queues, key encoder) and ``nonfinite_skipped`` counts it.
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
                 loss_disc: Optional[dict] = dict(type='LSGANLoss', loss_weight=0.5),
                 queue_len: int = 16384,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 align_size: int = 16,
                 prior: Optional[dict] = None,
                 channels_last: bool = True,
                 nonfinite: str = 'raise',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        weights = {name: _loss_weight(cfg, name)
                   for name, cfg in zip(_TERMS, (loss_inv, loss_equiv, loss_adv))}
        if all(w == 0 for w in weights.values()):
            raise ValueError('LiftedCL needs at least one of loss_inv, loss_equiv, loss_adv '
                             f'with loss_weight > 0, got {weights}')
        self.use_inv = weights['loss_inv'] > 0
        self.use_equiv = weights['loss_equiv'] > 0
        self.use_adv = weights['loss_adv'] > 0
        required = dict(neck=(self.use_inv, neck, 'loss_inv'),
                        equiv_neck=(self.use_equiv, equiv_neck, 'loss_equiv'),
                        lifting_head=(self.use_adv, lifting_head, 'loss_adv'),
                        discriminator=(self.use_adv, discriminator, 'loss_adv'),
                        prior=(self.use_adv, prior, 'loss_adv'),
                        loss_disc=(self.use_adv, loss_disc, 'loss_adv'))
        for key, (used, cfg, term) in required.items():
            if used and cfg is None:
                raise ValueError(f'{term} has loss_weight > 0 but `{key}` is not configured')
        if int(queue_len) < 1:
            raise ValueError(f'queue_len must be >= 1, got {queue_len}')
        if int(align_size) < 1:
            raise ValueError(f'align_size must be >= 1, got {align_size}')
        if not 0.0 < float(momentum) < 1.0:
            raise ValueError(f'momentum must be in (0, 1), got {momentum}')
        if nonfinite not in ('raise', 'skip'):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")

        super().__init__(
            backbone=backbone,
            neck=neck if self.use_inv else None,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)

        def build(cfg):
            return cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)

        self.equiv_neck = build(equiv_neck) if self.use_equiv else None
        self.lifting_head = build(lifting_head) if self.use_adv else None
        self.discriminator = build(discriminator) if self.use_adv else None
        self.loss_inv = build(loss_inv) if self.use_inv else None
        self.loss_equiv = build(loss_equiv) if self.use_equiv else None
        self.loss_adv = build(loss_adv) if self.use_adv else None
        self.loss_disc = build(loss_disc) if self.use_adv else None

        self.queue_len = int(queue_len)
        self.feat_dim = int(feat_dim)
        self.align_size = int(align_size)
        self.nonfinite = nonfinite
        self.channels_last = bool(channels_last)
        if self.channels_last:
            # before the key encoder copies the query encoder, so both use the same layout
            self.backbone.to(memory_format=torch.channels_last)
            if self.equiv_neck is not None:
                self.equiv_neck.to(memory_format=torch.channels_last)

        self.encoder_k = None
        self._key_encoder_started = False
        if self.use_inv or self.use_equiv:
            self.encoder_k = ExponentialMovingAverage(self._query_encoder(), float(momentum))
        self.queue_inv = (MODELS.build(dict(type='FeatureQueue', dim=self.feat_dim,
                                            length=self.queue_len)) if self.use_inv else None)
        self.queue_equiv = (MODELS.build(dict(type='FeatureQueue', dim=self.feat_dim,
                                              length=self.queue_len))
                            if self.use_equiv else None)

        # Iterations seen by train_step (skipped ones included): makes the prior draw a pure
        # function of (seed, iteration, rank), restored with the checkpoint.
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.long))
        self.register_buffer('nonfinite_skipped', torch.zeros((), dtype=torch.long))
        if self.use_adv:
            self._build_prior(prior)

    # ------------------------------------------------------------------ construction
    def _build_prior(self, prior: dict) -> None:
        dataset = DATASETS.build(prior) if isinstance(prior, dict) else prior
        skeletons = getattr(dataset, 'skeletons', None)
        if skeletons is None:
            raise ValueError(f'prior dataset {type(dataset).__name__} has no `skeletons`')
        skeletons = torch.as_tensor(np.asarray(skeletons, dtype=np.float32))
        num_joints = _unwrap(self.lifting_head).num_joints
        if skeletons.dim() != 3 or skeletons.shape[0] < 1 or skeletons.shape[2] != 3:
            raise ValueError(f'prior skeletons must have shape (P, J, 3), '
                             f'got {tuple(skeletons.shape)}')
        if skeletons.shape[1] != num_joints:
            raise ValueError(f'prior skeletons have {skeletons.shape[1]} joints but '
                             f'lifting_head.num_joints is {num_joints}')
        disc_joints = getattr(self.discriminator, 'num_joints', num_joints)
        if disc_joints != num_joints:
            raise ValueError(f'discriminator.num_joints ({disc_joints}) != '
                             f'lifting_head.num_joints ({num_joints})')
        self.prior_seed = int(getattr(dataset, 'seed', None)
                              or (prior.get('seed', 0) if isinstance(prior, dict) else 0))
        # Not persistent: rebuilt from the config, so checkpoints stay small.
        self.register_buffer('prior_skeletons', skeletons, persistent=False)

    def _query_encoder(self) -> nn.Sequential:
        """The modules the key encoder mirrors, in a fixed layout (bare, not DDP)."""
        return nn.Sequential(
            _unwrap(self.backbone),
            _unwrap(self.neck) if self.neck is not None else nn.Identity(),
            _unwrap(self.equiv_neck) if self.equiv_neck is not None else nn.Identity())

    # ------------------------------------------------------------------ helpers
    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor]:
        """Backbone features of images (N, 3, H, W)."""
        return self.backbone(inputs)

    @staticmethod
    def _view_geometry(data_samples: List[DataSample], device: torch.device):
        bboxes, flips = [], []
        for i, sample in enumerate(data_samples):
            if 'view_bboxes' not in sample or 'view_flips' not in sample:
                raise KeyError(f'data sample {i} lacks view_bboxes/view_flips metainfo; '
                               'use PackViewsWithGeometry in the pipeline')
            bboxes.append(torch.as_tensor(np.asarray(sample.view_bboxes, dtype=np.float32)))
            flips.append(torch.as_tensor(np.asarray(sample.view_flips, dtype=bool)))
        bboxes = torch.stack(bboxes).to(device)
        flips = torch.stack(flips).to(device)
        if bboxes.dim() != 3 or bboxes.shape[1] < 2 or bboxes.shape[2] != 4:
            raise ValueError(f'view_bboxes must be (V>=2, 4) per sample, got '
                             f'{tuple(bboxes.shape[1:])}')
        return bboxes, flips

    def draw_prior(self, num: int, step: int, device: torch.device) -> torch.Tensor:
        """``num`` prior skeletons for iteration ``step`` (deterministic, rank-dependent).

        Returns:
            torch.Tensor: (num, J, 3) float32 on ``device``.
        """
        gen = torch.Generator()
        gen.manual_seed((self.prior_seed * 1_000_003 + step) * 1009 + get_rank())
        index = torch.randint(self.prior_skeletons.shape[0], (num, ), generator=gen)
        return self.prior_skeletons[index.to(self.prior_skeletons.device)].to(device)

    def _forward_encoder(self, inputs: List[torch.Tensor],
                         data_samples: List[DataSample]) -> Tuple[Dict, Dict]:
        """Encoder losses of one batch. Returns ``(losses, state)``; no update is made."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 1:
            raise TypeError('LiftedCL expects inputs as a list of view tensors (N, 3, H, W)')
        contrastive = self.use_inv or self.use_equiv
        if contrastive and len(inputs) < 2:
            raise ValueError(f'loss_inv/loss_equiv need 2 views, got {len(inputs)}')
        im_q = self._to_memory_format(inputs[0])
        num = im_q.shape[0]
        world = get_world_size()
        if contrastive and num * world > self.queue_len:
            raise ValueError(f'queue_len ({self.queue_len}) must be >= the global batch size '
                             f'({num} x {world} ranks = {num * world})')
        losses, state = dict(), dict()
        feats = self.backbone(im_q)
        if self.use_adv:
            state['joints'] = self.lifting_head(feats)

        if contrastive:
            if not self._key_encoder_started:
                if int(self.encoder_k.steps) == 0:
                    # First update copies: the key encoder starts equal to the (initialised
                    # or pre-trained) query encoder.
                    self.encoder_k.update_parameters(self._query_encoder())
                self._key_encoder_started = True  # saves a host sync per iteration
            with torch.no_grad():
                im_k, idx_unshuffle = self._shuffle(self._to_memory_format(inputs[1]))
                k_feats = self.encoder_k.module[0](im_k)
                if self.use_inv:
                    z_k = self._unshuffle(self.encoder_k.module[1](k_feats)[0], idx_unshuffle)
                if self.use_equiv:
                    map_k = self._unshuffle(self.encoder_k.module[2](k_feats)[0],
                                            idx_unshuffle)

        if self.use_inv:
            z_q = self.neck(feats)[0]
            losses['loss_inv'], state['acc_inv'] = self.loss_inv(
                z_q, z_k, self.queue_inv.queue, return_accuracy=True)
            state['key_inv'] = z_k
        if self.use_equiv:
            map_q = self.equiv_neck(feats)[0]
            bboxes, flips = self._view_geometry(data_samples, map_q.device)
            aligned_q, aligned_k, valid = align_shared_regions(
                map_q, map_k, bboxes[:, 0], bboxes[:, 1], flips[:, 0], flips[:, 1],
                out_size=self.align_size)
            channels = aligned_q.shape[1]
            rows_q = aligned_q.permute(0, 2, 3, 1).reshape(-1, channels)
            rows_k = aligned_k.permute(0, 2, 3, 1).reshape(-1, channels)
            valid_rows = valid.repeat_interleave(self.align_size**2)
            losses['loss_equiv'] = self.loss_equiv(rows_q, rows_k, self.queue_equiv.queue,
                                                   valid_rows)
            state['key_equiv'] = map_k.float().mean(dim=(2, 3))
            state['num_invalid_pairs'] = (~valid).sum()
        if self.use_adv:
            # D is frozen: this term moves only the encoder; D gets no gradient.
            with _frozen(self.discriminator):
                score = _unwrap(self.discriminator)(state['joints'])
            losses['loss_adv_g'] = self.loss_adv(score, True)
        return losses, state

    def _to_memory_format(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    @staticmethod
    def _shuffle(x: torch.Tensor):
        if get_world_size() > 1:
            return batch_shuffle_ddp(x)
        return x, None

    @staticmethod
    def _unshuffle(x: torch.Tensor, idx_unshuffle: Optional[torch.Tensor]) -> torch.Tensor:
        if idx_unshuffle is None:
            return x
        return batch_unshuffle_ddp(x, idx_unshuffle)

    def _discriminator_losses(self, joints: torch.Tensor, step: int) -> Dict[str, torch.Tensor]:
        real = self.draw_prior(joints.shape[0], step, joints.device).to(joints.dtype)
        # One pass over real and fake together (D has no batch-coupled layers): one DDP
        # forward per backward.
        scores = self.discriminator(torch.cat([real, joints.detach()], dim=0))
        score_real, score_fake = scores[:joints.shape[0]], scores[joints.shape[0]:]
        d_acc = torch.cat([score_real > 0.5, score_fake < 0.5]).float().mean()
        return dict(loss_d_real=self.loss_disc(score_real, True),
                    loss_d_fake=self.loss_disc(score_fake, False), d_acc=d_acc.detach())

    def _buffer_snapshot(self) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        modules = [self.backbone, self.neck, self.equiv_neck, self.lifting_head,
                   self.discriminator]
        if self.encoder_k is not None:
            modules.append(self.encoder_k)
        return [(buf, buf.detach().clone()) for m in modules if m is not None
                for buf in m.buffers()]

    # ------------------------------------------------------------------ API
    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Encoder losses (``loss_inv``, ``loss_equiv``, ``loss_adv_g``) of a batch.

        No parameter, queue or key-encoder update is made; use ``train_step`` to train.

        Args:
            inputs (List[torch.Tensor]): Views, each (N, 3, H, W); view 0 query, 1 key.
            data_samples (List[DataSample]): With ``view_bboxes`` (V, 4), ``view_flips``
                (V,) metainfo (needed by ``loss_equiv``).

        Returns:
            dict[str, torch.Tensor]: The enabled loss terms.
        """
        losses, _ = self._forward_encoder(inputs, data_samples)
        return losses

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One alternating encoder/discriminator iteration.

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapperDict): ``generator`` and (with ``loss_adv``)
                ``discriminator`` wrappers.

        Returns:
            dict: Log variables (see the class docstring).
        """
        if not isinstance(optim_wrapper, OptimWrapperDict) or 'generator' not in optim_wrapper:
            raise TypeError('LiftedCL.train_step needs an OptimWrapperDict with a "generator" '
                            'entry (use GeneratorDiscriminatorOptimWrapperConstructor)')
        if self.use_adv and 'discriminator' not in optim_wrapper:
            raise KeyError('loss_adv is on but optim_wrapper has no "discriminator" entry')
        gen_wrapper = optim_wrapper['generator']
        disc_wrapper = optim_wrapper['discriminator'] if self.use_adv else None
        step = int(self.num_steps)
        snapshot = self._buffer_snapshot() if self.nonfinite == 'skip' else None

        with gen_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses, state = self._forward_encoder(data['inputs'], data['data_samples'])
        d_losses = dict()
        if self.use_adv:
            with disc_wrapper.optim_context(self.discriminator):
                d_losses = self._discriminator_losses(state['joints'], step)
        total = sum(losses.values())

        checked = dict(losses, **{k: v for k, v in d_losses.items() if k.startswith('loss')})
        bad = self._nonfinite_terms(checked)
        log_vars = dict()
        if bad:
            if self.nonfinite == 'raise':
                raise FloatingPointError(
                    f'LiftedCL: non-finite {", ".join(bad)} at iteration {step} '
                    f"(set model.nonfinite='skip' to skip such iterations)")
            for buf, saved in snapshot:
                buf.copy_(saved)
            self.nonfinite_skipped += 1
        else:
            gen_wrapper.update_params(total)
            if self.use_adv:
                disc_wrapper.update_params(d_losses['loss_d_real'] + d_losses['loss_d_fake'])
            with torch.no_grad():
                if self.encoder_k is not None:
                    self.encoder_k.update_parameters(self._query_encoder())
                if self.use_inv:
                    self.queue_inv.enqueue(state['key_inv'])
                if self.use_equiv:
                    self.queue_equiv.enqueue(state['key_equiv'])
        self.num_steps += 1

        log_vars['loss'] = total.detach()
        log_vars.update({k: v.detach() for k, v in losses.items()})
        log_vars.update({k: v.detach() for k, v in d_losses.items()})
        if 'acc_inv' in state:
            log_vars['acc_inv'] = state['acc_inv']
        if 'num_invalid_pairs' in state:
            log_vars['num_invalid_pairs'] = state['num_invalid_pairs'].float()
        if self.nonfinite == 'skip':
            log_vars['nonfinite_skipped'] = self.nonfinite_skipped.float()
        return log_vars

    def _nonfinite_terms(self, losses: Dict[str, torch.Tensor]) -> List[str]:
        names = list(losses)
        finite = torch.stack([torch.isfinite(losses[n].detach().float()).all() for n in names])
        bad = (~finite).float()
        # Every rank must take the same branch, or the next collective deadlocks.
        all_reduce(bad, op='sum')
        return [n for n, flag in zip(names, bad.tolist()) if flag > 0]
