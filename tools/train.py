"""Train with an MMEngine config: LiftedCL pre-training (configs/*.py) or MMPose fine-tuning
(configs/mmpose/*.py, ``default_scope='mmpose'``).

Examples::

    python tools/train.py configs/liftedcl_tiny_demo.py
    python tools/train.py configs/liftedcl_r50_coco.py --resume auto --amp
    bash tools/dist_train.sh configs/liftedcl_r50_coco.py 4
    mim train liftedcl_mm configs/liftedcl_tiny_demo.py
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

# Registers every liftedcl_mm component and the safe-globals allow-list used to read MMEngine
# checkpoints with torch.load(weights_only=True) on resume.
import liftedcl_mm  # noqa: F401
from liftedcl_mm.utils.checkpoint import (UnsafeCheckpointError, find_unsafe_globals,
                                          register_safe_globals)
from liftedcl_mm.utils.launch import (adapt_to_device, check_data_fills_a_batch,
                                      check_init_checkpoints, parse_args_with_launcher,
                                      setup_cpu_distributed)
from liftedcl_mm.utils.state_check import StateMismatch, check_resume_fits
from liftedcl_mm.utils.work_dir import (check_no_overwrite, resolve_auto_resume,
                                        verify_checkpoint)

# Optim wrapper types that --amp replaces by AmpOptimWrapper.
_PLAIN_WRAPPERS = (None, 'OptimWrapper')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model (liftedcl_mm / MMPose config)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; with no value or "auto", from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='start from iteration 0 even if the work dir already holds checkpoints (they are '
        'overwritten); without it such a run is refused')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AmpOptimWrapper for every optimizer)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real batch size / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, "key=value" pairs, e.g. '
        'model.backbone.init_cfg.checkpoint=work_dirs/demo/backbone.pth')
    return parse_args_with_launcher(parser, argv)


def load_config(path: str) -> Config:
    """``Config.fromfile`` with a clear error for a missing/unreadable config."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: "{path}"')
    return Config.fromfile(path)


def _to_amp(wrapper_cfg: dict, where: str) -> None:
    wrapper_type = wrapper_cfg.get('type')
    if wrapper_type == 'AmpOptimWrapper':
        warnings.warn(f'{where} already uses AmpOptimWrapper; --amp leaves it as it is')
        return
    if wrapper_type not in _PLAIN_WRAPPERS:
        raise ValueError(f'--amp cannot switch {where} of type {wrapper_type!r} to '
                         'AmpOptimWrapper; only OptimWrapper is supported')
    wrapper_cfg['type'] = 'AmpOptimWrapper'
    wrapper_cfg.setdefault('loss_scale', 'dynamic')


def enable_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to AmpOptimWrapper.

    Handles a single wrapper (``dict(type='OptimWrapper', optimizer=...)``) and an
    ``OptimWrapperDict`` config whose sub-dicts (e.g. LiftedCL's ``generator`` and
    ``discriminator``) are wrappers of their own.
    """
    optim_wrapper = cfg.get('optim_wrapper')
    if not isinstance(optim_wrapper, dict):
        raise ValueError('--amp needs an optim_wrapper in the config')
    if 'optimizer' in optim_wrapper:
        _to_amp(optim_wrapper, 'optim_wrapper')
        return
    subs = [k for k, v in optim_wrapper.items() if isinstance(v, dict) and 'optimizer' in v]
    if not subs:
        raise ValueError('--amp: optim_wrapper has neither an "optimizer" nor sub-wrappers with '
                         f'one (keys: {sorted(optim_wrapper)})')
    for key in subs:
        _to_amp(optim_wrapper[key], f'optim_wrapper.{key}')


def merge_args(cfg: Config, args) -> Config:
    """Apply the command line to ``cfg`` (MMPretrain's tools/train.py conventions)."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        enable_amp(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: "{args.resume}"')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs "auto_scale_lr.base_batch_size" in the config')
        cfg.auto_scale_lr.enable = True

    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    return adapt_to_device(cfg)


def prepare_work_dir(cfg: Config, args) -> Optional[str]:
    """Pick what ``--resume auto`` continues from; refuse to train over existing checkpoints.

    ``--resume auto`` takes ``last_checkpoint`` when it verifies, else the newest checkpoint
    that does (and says so); with none at all the run starts fresh. Without ``--resume`` a work
    dir holding checkpoints is refused unless ``--overwrite`` is given.

    Returns:
        str | None: The checkpoint ``--resume auto`` verified, if any.
    """
    if args.resume == 'auto':
        path = resolve_auto_resume(cfg.work_dir)
        cfg.resume = path is not None
        cfg.load_from = path
        return path
    if not cfg.get('resume') and not args.overwrite:
        check_no_overwrite(cfg.work_dir)
    return None


def check_checkpoint_to_load(cfg: Config, verified: Optional[str] = None) -> None:
    """Refuse an unsafe or unreadable resume/``load_from`` file before anything is built.

    Only the pickle's opcodes are read (nothing runs); the Runner would refuse such a file too,
    but deep inside torch and without naming it. ``verified``: a file already checked so (by
    ``--resume auto``), not read again.
    """
    path = cfg.get('load_from')
    if path is None or not osp.isfile(path) or path == verified:
        return
    unsafe = find_unsafe_globals_or_none(path)
    if unsafe:
        raise UnsafeCheckpointError(path, unsafe)
    reason = verify_checkpoint(path)
    if reason is not None:
        raise ValueError(f'"{path}" is not a readable torch checkpoint: {reason}')


def find_unsafe_globals_or_none(path: str):
    try:
        return find_unsafe_globals(path)
    except Exception:  # noqa: BLE001  (unreadable: verify_checkpoint says why)
        return None


def build_runner(cfg: Config):
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    from mmengine.registry import RUNNERS
    return RUNNERS.build(cfg)


def main(argv=None):
    args = parse_args(argv)
    register_safe_globals()
    try:
        if args.amp:
            from mmengine.device import get_device
            if get_device() == 'cpu':
                raise ValueError('--amp needs a GPU (or NPU/MLU): MMEngine\'s AmpOptimWrapper '
                                 'does not run on CPU')
        cfg = merge_args(load_config(args.config), args)
        check_checkpoint_to_load(cfg, verified=prepare_work_dir(cfg, args))
        check_init_checkpoints(cfg)
    except (FileNotFoundError, FileExistsError, RuntimeError, ValueError) as err:
        # a wrong command line: say what is wrong without a traceback
        sys.exit(f'error: {err}')
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    try:
        check_data_fills_a_batch(runner)
        if cfg.get('resume') and cfg.get('load_from'):
            # verified above (CRCs, globals): only keys and shapes are read again here
            check_resume_fits(runner.model, cfg.load_from, verified=True)
    except (StateMismatch, ValueError) as err:
        sys.exit(f'error: {err}')
    runner.train()
    return runner


if __name__ == '__main__':
    main()
