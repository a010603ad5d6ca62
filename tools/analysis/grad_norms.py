"""How hard each LiftedCL loss term pushes the backbone: per-term gradient norms on one batch.

For a LiftedCL config (and optionally a checkpoint of it), draws one training batch, runs the
encoder's forward pass as ``LiftedCL.train_step`` does (no update) and prints, for every enabled
encoder term (``loss_inv``, ``loss_equiv``, ``loss_adv_g``, each with its loss weight), its value
and the norm of its gradient on the backbone's parameters; for ``loss_adv_g`` also the norm of its
gradient on the lifted joints. This is the measurement behind README *Does it learn?*, reading 5
(at initialisation the adversarial term pushed the study's backbone ~30-60x harder than the
contrastive ones, seeds 0-2).

Example::

    python tools/analysis/grad_norms.py configs/study/liftedcl_r18_synth_balanced-adv.py \\
        --data-root data/synthetic_humans_shared/coco_human/ \\
        --cfg-options model.adv_backbone_grad=1.0
"""
import argparse
import json
import os.path as osp
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a LiftedCL config')
    parser.add_argument('--checkpoint', default=None, help='weights of that config (default: '
                        'its initialisation)')
    parser.add_argument('--data-root', default=None,
                        help='override train_dataloader.dataset.data_root')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    parser.add_argument('--out', default=None, help='also write the numbers to this json')
    return parser.parse_args(argv)


def term_grad_norms(model, data: dict) -> dict:
    """``{term: dict(value, backbone_grad_norm[, joints_grad_norm])}`` of one preprocessed batch
    (``model.data_preprocessor(batch, True)``); parameters and BN statistics are not updated
    (BN's running statistics move as in any training-mode forward pass)."""
    losses, state = model._forward_encoder(data['inputs'], data['data_samples'])
    params = [p for p in model.backbone.parameters() if p.requires_grad]
    out = {}
    for term, loss in losses.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum(g.float().pow(2).sum() for g in grads if g is not None))
        row = dict(value=float(loss.detach()), backbone_grad_norm=float(norm))
        if term == 'loss_adv_g':
            joints_grad, = torch.autograd.grad(loss, state['joints'], retain_graph=True)
            row['joints_grad_norm'] = float(joints_grad.norm())
        out[term] = row
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import liftedcl_mm  # noqa: F401  (registers the modules)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmengine.runner.utils import set_random_seed
    from liftedcl_mm.registry import MODELS
    from liftedcl_mm.utils.checkpoint import load_checkpoint_safely
    from liftedcl_mm.utils.state_check import (StateMismatch, checkpoint_state_dict,
                                               compare_state, describe)

    set_random_seed(args.seed)  # python, numpy and torch: initialisation and augmentations
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.get('type') != 'LiftedCL':
        raise ValueError(f'{args.config}: model.type must be LiftedCL, got {cfg.model.get("type")}')
    if args.data_root:
        cfg.train_dataloader.dataset.data_root = args.data_root
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    init_default_scope('liftedcl_mm')
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        state = checkpoint_state_dict(load_checkpoint_safely(args.checkpoint))
        text, _ = describe(compare_state(model.state_dict(), state))
        if text:  # a wrong checkpoint would measure some other model's gradients
            raise StateMismatch(f'{args.checkpoint} does not fit the model of {args.config}: '
                                f'{text}')
        model.load_state_dict(state, strict=True)
    model.train()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=args.seed)))
    norms = term_grad_norms(model, model.data_preprocessor(batch, True))
    for term, row in norms.items():
        print(f"{term}: value {row['value']:.4f}, backbone gradient norm "
              f"{row['backbone_grad_norm']:.4g}"
              + (f", lifted-joints gradient norm {row['joints_grad_norm']:.4g}"
                 if 'joints_grad_norm' in row else ''))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint, terms=norms), f,
                      indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
