"""Train a LiftedCL config for a few iterations and check that every loss stays finite and bounded.

Runs MMEngine's Runner as ``tools/train.py`` does (iteration-based loop, no checkpoints), records
the losses of every iteration, prints them with the iteration time, and exits with status 1 if a
loss is non-finite (or training raised ``FloatingPointError``) or the total encoder loss
(``loss``) or the discriminator loss (``loss_d_real + loss_d_fake``) exceeds ``--bound``.

Examples::

    # the paper's config (lr 0.03, random init) on the shipped demo crops, batch 8
    python tools/analysis/check_stability.py configs/liftedcl_r50_coco.py \\
        --data-root data/demo/coco_human/ --batch-size 8 --iters 40
    # the authors' raw lifted joints
    python tools/analysis/check_stability.py configs/liftedcl_r50_coco.py \\
        --data-root data/demo/coco_human/ --cfg-options model.lifting_head.normalize=False
"""
import argparse
import json
import math
import sys
import tempfile
import time

from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

import liftedcl_mm  # noqa: F401
from liftedcl_mm.utils.checkpoint import register_safe_globals
from liftedcl_mm.utils.launch import adapt_to_device

LOSSES = ('loss', 'loss_inv', 'loss_equiv', 'loss_adv_g', 'loss_d_real', 'loss_d_fake')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check that a LiftedCL config trains stably')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--iters', type=int, default=40, help='iterations to run')
    parser.add_argument('--batch-size', type=int, default=8, help='images per iteration')
    parser.add_argument('--num-workers', type=int, default=2, help='dataloader workers')
    parser.add_argument('--data-root', help='override train_dataloader.dataset.data_root')
    parser.add_argument('--lr', type=float, help='override the lr of every optimizer')
    parser.add_argument('--bound', type=float, default=50.0,
                        help='largest allowed total encoder / discriminator loss')
    parser.add_argument('--work-dir', help='logs go here (default: a new temporary dir)')
    parser.add_argument('--out', help='write the per-iteration losses to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, "key=value" pairs')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.batch_size < 1 or args.num_workers < 0 or args.bound <= 0:
        parser.error('--iters and --batch-size must be >= 1, --num-workers >= 0, --bound > 0')
    return args


def build_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    loader = cfg.train_dataloader
    loader.batch_size = args.batch_size
    loader.num_workers = args.num_workers
    loader.persistent_workers = False
    loader.drop_last = True
    if args.data_root is not None:
        loader.dataset.data_root = args.data_root
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.log_processor = dict(by_epoch=False, window_size=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    # no checkpoints: they would be hundreds of MB for ResNet-50 and are not the point
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**9, by_epoch=False,
                                       save_last=False)
    if args.lr is not None:
        wrappers = cfg.optim_wrapper
        subs = [wrappers] if 'optimizer' in wrappers else [
            v for v in wrappers.values() if isinstance(v, dict) and 'optimizer' in v]
        for sub in subs:
            sub.optimizer.lr = args.lr
    cfg.work_dir = args.work_dir or tempfile.mkdtemp(prefix='check_stability_')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return adapt_to_device(cfg)


class LossRecorder(Hook):
    """Keeps the losses and the wall time of every training iteration."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.records = []
        self._start = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        record = dict(iter=runner.iter + 1, time=time.perf_counter() - self._start)
        record.update({k: float(v) for k, v in (outputs or {}).items() if k in LOSSES})
        self.records.append(record)


def problems(records, iters: int, bound: float, error=None):
    """What makes the run unstable, as a list of sentences (empty: stable)."""
    # the model numbers iterations from 0, the runner (and these records) from 1
    found = ([f'training stopped at iteration {len(records) + 1}: {error}']
             if error is not None else [])
    if error is None and len(records) < iters:
        found.append(f'only {len(records)} of {iters} iterations ran')
    for rec in records:
        bad = [k for k in LOSSES if k in rec and not math.isfinite(rec[k])]
        if bad:
            found.append(f'iteration {rec["iter"]}: non-finite {", ".join(bad)}')
        d_total = rec.get('loss_d_real', 0.0) + rec.get('loss_d_fake', 0.0)
        if rec.get('loss', 0.0) > bound or d_total > bound:
            found.append(f'iteration {rec["iter"]}: loss {rec.get("loss"):.4g}, discriminator '
                         f'loss {d_total:.4g} (bound {bound:g})')
    return found


def report(records) -> str:
    keys = [k for k in LOSSES if any(k in r for r in records)]
    lines = ['iter   time_s  ' + '  '.join(f'{k:>11s}' for k in keys)]
    for rec in records:
        lines.append(f'{rec["iter"]:4d}  {rec["time"]:7.2f}  '
                     + '  '.join(f'{rec.get(k, float("nan")):11.4g}' for k in keys))
    if records:
        lines.append('max          ' + '  '.join(
            f'{max(r.get(k, float("nan")) for r in records):11.4g}' for k in keys))
        times = [r['time'] for r in records[1:]] or [records[0]['time']]
        lines.append(f'final loss {records[-1].get("loss", float("nan")):.4g}; '
                     f'mean iteration time {sum(times) / len(times):.2f} s '
                     '(first iteration excluded)')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    register_safe_globals()
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder)
    error = None
    try:
        runner.train()
    except FloatingPointError as err:
        error = str(err)
    found = problems(recorder.records, args.iters, args.bound, error)
    print(report(recorder.records))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(records=recorder.records, problems=found), f, indent=1)
    for line in found:
        print(f'UNSTABLE: {line}')
    print('stable' if not found else 'unstable')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
