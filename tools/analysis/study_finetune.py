"""Short MMPose SimpleBaseline fine-tuning from one init: the learning study's fine-tuning arm.

Issue 14 asks whether each pre-training arm helps a downstream pose model. ``finetune`` takes a
pre-training checkpoint (liftedcl_mm or MMPretrain ``MoCo``, both MMEngine files) or ``None``
(random init), extracts its query backbone with ``tools/model_converters/extract_backbone.py``
and fine-tunes ``configs/study/simplebaseline_r18_synth.py`` with MMEngine's ``Runner`` in this
process, then scores the val split (CocoMetric AP/AR, PCK at 0.05 and 0.2 of the box size).

Example::

    python tools/analysis/study_finetune.py \
        work_dirs/learning_signal/runs/c_inv_equiv_seed0/iter_1000.pth --work-dir /tmp/ft
"""
import argparse
import itertools
import json
import math
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))

import extract_backbone  # noqa: E402
from liftedcl_mm.utils.checkpoint import load_checkpoint_safely  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'study', 'simplebaseline_r18_synth.py')
REQUIRED = ('coco/AP', 'coco/AR', 'pck0.05/PCK', 'pck0.2/PCK')
# MMEngine keys its logger, visualizer and message hub by experiment name; one per run keeps
# repeated fine-tunings in one process from sharing them.
_RUN_IDS = itertools.count()


def _coco_dir(data_root: str) -> str:
    """The COCO-layout folder: ``data_root`` itself or, for the study's data root, its coco/."""
    nested = osp.join(data_root, 'coco')
    if not osp.isdir(osp.join(data_root, 'annotations')) and osp.isdir(nested):
        data_root = nested
    return osp.join(data_root, '')


def _check_backbone_fits(backbone, state: dict, path: str) -> None:
    """Raise unless ``state`` covers ``backbone`` exactly.

    MMEngine's ``Pretrained`` init only warns about missing keys and shape mismatches; a
    fine-tuning that silently started from random weights would pass for a weak init.
    """
    own = backbone.state_dict()
    problems = sorted(set(own) ^ set(state))
    problems += [f'{k}: {tuple(state[k].shape)} != {tuple(v.shape)}' for k, v in own.items()
                 if k in state and state[k].shape != v.shape]
    if problems:
        raise ValueError(f'the backbone in "{path}" does not fit the pose model\'s backbone '
                         f'({len(problems)} mismatches, e.g. {problems[:4]})')


def build_config(checkpoint, work_dir: str, data_root=None, seed: int = 0, cfg_options=None):
    """The fine-tuning config of one init; extracts the backbone into ``work_dir``.

    Args:
        checkpoint (str | None): Pre-training checkpoint, or None for random init.
        work_dir (str): Where the backbone, logs and checkpoint go.
        data_root (str | None): COCO-layout data (or a folder holding coco/); None keeps the
            config's ``data/synthetic_humans/coco``.
        seed (int): Seed of the fine-tuning.
        cfg_options (dict | None): Overrides merged last (``--cfg-options`` style keys).

    Returns:
        tuple: ``(cfg, backbone_state)``; the state is None for random init.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'finetune_{time.strftime("%Y%m%d_%H%M%S")}_{next(_RUN_IDS)}'
    cfg.randomness = dict(seed=seed, deterministic=False)
    if cfg.get('visualizer'):
        # MMPose names its visualizer 'visualizer': later runs would write into the first's logs
        cfg.visualizer.name = cfg.experiment_name
    if data_root is not None:
        coco = _coco_dir(data_root)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader].dataset.data_root = coco
        ann_file = osp.join(coco, cfg.test_dataloader.dataset.ann_file)
        for evaluators in (cfg.val_evaluator, cfg.test_evaluator):
            for evaluator in evaluators:
                if evaluator.type == 'CocoMetric':
                    evaluator.ann_file = ann_file
    state = None
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'pre-training checkpoint "{checkpoint}" does not exist')
        backbone = osp.join(work_dir, 'backbone.pth')
        extract_backbone.convert(checkpoint, backbone)
        state = load_checkpoint_safely(backbone, map_location='cpu')
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=backbone)
    else:
        cfg.model.backbone.init_cfg = None
    # scored once by runner.test() after training rather than by the loop's closing validation
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg, state


def finetune(checkpoint, work_dir: str, data_root=None, seed: int = 0, cfg_options=None) -> dict:
    """Fine-tune SimpleBaseline from ``checkpoint`` and score it on the val split.

    Args:
        checkpoint (str | None): liftedcl_mm or MMPretrain ``MoCo`` checkpoint (anything
            ``extract_backbone.py`` reads), or None for random init.
        work_dir (str): Output folder (``backbone.pth``, logs, the fine-tuned checkpoint).
        data_root (str | None): COCO-layout data, or a folder holding coco/ (e.g.
            ``data/synthetic_humans``); None keeps the config's.
        seed (int): Seed of the fine-tuning.
        cfg_options (dict | None): Config overrides, e.g. ``{'train_cfg.max_iters': 2}``.

    Returns:
        dict: Floats: every test metric (``coco/AP``, ``coco/AR``, ``pck0.05/PCK``,
        ``pck0.2/PCK``, ...), ``train_s`` (building the runner and training) and ``test_s``
        (seconds).
    """
    from mmengine.runner import Runner
    os.makedirs(work_dir, exist_ok=True)
    cfg, state = build_config(checkpoint, work_dir, data_root, seed, cfg_options)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    if state is not None:
        _check_backbone_fits(runner.model.backbone, state, checkpoint)
    runner.train()
    train_s = time.time() - start
    start = time.time()
    metrics = runner.test()
    result = {k: float(v) for k, v in metrics.items()}
    result.update(train_s=train_s, test_s=time.time() - start)
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise KeyError(f'the evaluators gave no {missing} (got {sorted(result)})')
    return result


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Short SimpleBaseline fine-tuning from one init')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='pre-training checkpoint (default: random init)')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--data', default=None, help='COCO-layout data or a folder with coco/')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    result = finetune(args.checkpoint, args.work_dir, args.data, args.seed, args.cfg_options)
    print(json.dumps({k: (v if math.isfinite(v) else str(v)) for k, v in result.items()},
                     indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
