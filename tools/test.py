"""Evaluate a checkpoint with the config's test loop and metrics (e.g. MMPose's CocoMetric).

Example::

    python tools/test.py configs/mmpose/simplebaseline_tiny_demo.py \
        work_dirs/demo/finetune/epoch_2.pth
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import liftedcl_mm  # noqa: F401  (registers components and the safe-globals allow-list)
from liftedcl_mm.utils.checkpoint import register_safe_globals
from liftedcl_mm.utils.launch import (adapt_to_device, parse_args_with_launcher,
                                      setup_cpu_distributed)
from liftedcl_mm.utils.state_check import StateMismatch, check_test_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--out', help='dump the metrics to this file (json/yaml/pkl)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, "key=value" pairs')
    return parse_args_with_launcher(parser, argv)


def merge_args(cfg: Config, args) -> Config:
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint file not found: "{args.checkpoint}"')
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('test_dataloader') is None or cfg.get('test_evaluator') is None:
        raise ValueError(f'config "{args.config}" has no test_dataloader/test_evaluator')
    return adapt_to_device(cfg)


def main(argv=None):
    args = parse_args(argv)
    register_safe_globals()
    try:
        if not osp.isfile(args.config):
            raise FileNotFoundError(f'Config file not found: "{args.config}"')
        cfg = merge_args(Config.fromfile(args.config), args)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    # CPU-only torchrun: gloo process group and a DDP wrapper without device_ids
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        check_test_checkpoint(runner.model, cfg.load_from)
    except (StateMismatch, ValueError) as err:
        sys.exit(f'error: {err}')
    metrics = runner.test()
    if args.out:
        import mmengine
        mmengine.dump(metrics, args.out)
    return metrics


if __name__ == '__main__':
    main()
