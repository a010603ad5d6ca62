"""What tools/train.py and tools/test.py share: launcher arguments and config adaptation."""
import argparse
import os

import torch
from mmengine.config import Config, ConfigDict


def parse_args_with_launcher(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Add ``--launcher`` and ``--local-rank`` to ``parser``, parse ``argv``, export LOCAL_RANK.

    ``torch.distributed.launch`` passes ``--local-rank``; ``torchrun`` sets ``LOCAL_RANK``.
    """
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def adapt_to_device(cfg: Config) -> Config:
    """Pick gloo when CUDA is absent (NCCL needs it) and default to our scope.

    Args:
        cfg (Config): A pre-training or MMPose config, changed in place.
    """
    if not torch.cuda.is_available():
        env_cfg = cfg.setdefault('env_cfg', ConfigDict())
        dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'
    if cfg.get('default_scope') is None:
        cfg.default_scope = 'liftedcl_mm'
    return cfg


class CPUDistributedModelWrapper:
    """Builds ``wrapped_type`` (a DDP model wrapper) without ``device_ids``, for CPU ranks.

    MMEngine passes ``device_ids=[LOCAL_RANK]`` to every DDP-subclass wrapper, which PyTorch
    rejects for CPU modules. Not being a DDP subclass, this class receives no ``device_ids``
    and returns the real wrapper (e.g. ``MMSeparateDistributedDataParallel``) built without.
    """

    def __new__(cls, module, wrapped_type='MMDistributedDataParallel', **kwargs):
        from mmengine.registry import MODEL_WRAPPERS
        return MODEL_WRAPPERS.get(wrapped_type)(module=module, **kwargs)


def setup_cpu_distributed(cfg: Config) -> None:
    """Make ``launcher='pytorch'`` runs work without CUDA (tests, CPU clusters).

    MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, so the gloo
    process group is initialised here (from torchrun's environment); the Runner then skips its
    own initialisation. The model wrapper is routed through :class:`CPUDistributedModelWrapper`
    (registered in MMEngine's root registry so MMPose-scoped configs find it too).
    """
    if torch.cuda.is_available() or cfg.get('launcher', 'none') != 'pytorch':
        return
    from mmengine.registry import MODEL_WRAPPERS
    if MODEL_WRAPPERS.get('CPUDistributedModelWrapper') is None:
        MODEL_WRAPPERS.register_module(module=CPUDistributedModelWrapper)
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    if wrapper.get('type') != 'CPUDistributedModelWrapper':
        wrapped_type = wrapper.pop('type', 'MMDistributedDataParallel')
        cfg.model_wrapper_cfg = dict(
            type='CPUDistributedModelWrapper', wrapped_type=wrapped_type, **wrapper)
    import torch.distributed as torch_dist
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend=cfg.env_cfg.dist_cfg.get('backend', 'gloo'))


# Checkpoint strings MMEngine resolves itself (downloads, model zoos, remote storage).
_REMOTE_CHECKPOINT = ('http://', 'https://', 'torchvision://', 'open-mmlab://', 'openmmlab://',
                      'mmcls://', 'pavi://', 's3://', 'modelzoo://')

CONVERT_HINT = ('python tools/model_converters/extract_backbone.py DOWNLOADED_CHECKPOINT {path}')


def _pretrained_checkpoints(node, where: str):
    """Yield ``(config key, path)`` of every ``init_cfg=dict(type='Pretrained', ...)``."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f'{where}.{key}' if where else str(key)
            if key == 'init_cfg':
                for i, init in enumerate(value if isinstance(value, (list, tuple)) else [value]):
                    if isinstance(init, dict) and init.get('type') == 'Pretrained' \
                            and isinstance(init.get('checkpoint'), str):
                        name = here if not isinstance(value, (list, tuple)) else f'{here}[{i}]'
                        yield f'{name}.checkpoint', init['checkpoint']
            else:
                yield from _pretrained_checkpoints(value, here)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_checkpoints(value, f'{where}[{i}]')


def check_init_checkpoints(cfg: Config) -> None:
    """Refuse a training config whose ``Pretrained`` initialisation file is missing.

    MMEngine only notices a missing file after the datasets and the model are built, in a
    traceback that does not say which key points at it nor how to produce it. The Runner
    initialises weights before it loads or resumes a checkpoint, so the file is needed then too.

    Args:
        cfg (Config): A pre-training or MMPose training config.

    Raises:
        FileNotFoundError: Naming the config key, the path and the conversion command.
    """
    for key, path in _pretrained_checkpoints(cfg.get('model', {}), 'model'):
        if path.startswith(_REMOTE_CHECKPOINT) or os.path.isfile(path):
            continue
        raise FileNotFoundError(
            f'{key} = "{path}" does not exist. If it is a backbone converted from a downloaded '
            f'checkpoint (MoCo v2 ImageNet weights, the LiftedCL authors\' release, a '
            f'liftedcl_mm run), create it with:\n    {CONVERT_HINT.format(path=path)}\n'
            f'or point {key} at an existing file with --cfg-options.')


def check_data_fills_a_batch(runner) -> None:
    """Refuse a training set that cannot fill one batch (builds the train loop early).

    With ``drop_last=True`` such a set gives zero iterations: the epoch loop "trains" empty
    epochs and the iteration loop dies with a bare ``StopIteration``.

    Raises:
        ValueError: With the dataset size, batch size, process count and the fixes.
    """
    loader = runner.train_loop.dataloader
    if len(loader) > 0:
        return
    size = len(loader.dataset)
    raise ValueError(
        f'the training set has {size} samples, fewer than one batch of {loader.batch_size} per '
        f'process x {runner.world_size} process(es) with drop_last=True, so no iteration can '
        'run. Add data, lower train_dataloader.batch_size, or set '
        'train_dataloader.drop_last=False.')
