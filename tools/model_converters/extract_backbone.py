"""Extract the ResNet backbone of a pre-trained encoder as a plain, tensor-only state dict.

The output (an ``OrderedDict`` of tensors, keys like ``conv1.weight``, ``layer4.2.bn3.bias``) is
what MMPose/MMPretrain ``ResNet`` and torchvision's ``resnet*`` (without ``fc``) load with no
missing and no unexpected keys::

    model = dict(backbone=dict(
        type='ResNet', depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/liftedcl_r50_coco/backbone.pth')))

Sources (``--source auto`` detects them from the keys and prints which one it found):

* ``liftedcl``: a liftedcl_mm checkpoint (MMEngine ``{'meta', 'state_dict', ...}``); the query
  encoder is ``backbone.*``, the momentum (key) encoder ``encoder_k.module.0.*``
  (``--key-encoder``). Without converting, MMPose can also read the full checkpoint directly with
  ``init_cfg=dict(type='Pretrained', checkpoint=FULL.pth, prefix='backbone.')`` provided the
  config has ``custom_imports=dict(imports=['liftedcl_mm'])`` (our safe-globals allow-list is
  needed for the numpy objects in ``meta``/``message_hub``).
* ``mmpretrain``: an MMPretrain self-supervised checkpoint (``MoCo``, ``MoCoV3``, ``DenseCL``, ...,
  e.g. the learning study's MoCo peer): the query encoder is ``backbone.*`` as in ours, the
  momentum encoder ``target_net.module.0.*`` or ``momentum_encoder.module.0.*``
  (``--key-encoder``); told apart from ours by those (ours is ``encoder_k.*``).
* ``liftedcl-authors``: the LiftedCL authors' checkpoints (RichardChen20/LiftedCL
  ``train_adv.py``/``train_cl.py``, and their released IN+CC weights): MoCo's layout,
  ``{'epoch', 'arch', 'state_dict', 'optimizer_G'}`` (or the bare ``state_dict`` of their
  ``saved_models/moco_epoch_*.pth.tar``) with the DDP-wrapped query encoder
  ``module.encoder_q.{conv1, bn1, layer1-4}`` plus its heads ``mlp_invariant`` (invariant
  projector), ``conv_variant`` (equivariant projector) and ``lifting`` (lifting network), the key
  encoder ``module.encoder_k.*`` (``--key-encoder``) and the queues ``module.queue_inv``,
  ``module.queue_var``, ``module.queue_ptr``. The heads, key encoder and queues are dropped
  (their discriminator is not saved).
* ``moco``: MoCo v1/v2 checkpoints (facebookresearch/moco ``main_moco.py``, e.g. the MoCo v2
  ImageNet weights: ``{'epoch', 'arch', 'state_dict', 'optimizer'}`` with
  ``module.encoder_q.*``, the MLP ``fc.*``, ``module.encoder_k.*``, ``module.queue*``); the
  projection MLP and any other non-ResNet module are dropped. ``--key-encoder`` reads
  ``encoder_k``. The result also serves as stage-I initialisation of LiftedCL
  (``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=OUT)``).
* ``plain``: an already plain ResNet state dict (e.g. torchvision's); ``fc.*`` is dropped.

2020-era files saved in torch's legacy (non-zip) format are read by the same restricted
(weights-only) loader. Anything else is refused with the list of these layouts and a summary of
what the file holds.

Usage::

    python tools/model_converters/extract_backbone.py IN.pth OUT.pth [--source auto] [--key-encoder]
"""
import argparse
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from liftedcl_mm.utils.checkpoint import load_checkpoint_safely
from liftedcl_mm.utils.fileio import atomic_write

# Top-level modules of a (torchvision / MMPose / MMPretrain) ResNet.
RESNET_MODULES = ('conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4')

# Prefix of the query / key encoder's backbone in each source format.
QUERY_PREFIXES = {
    'liftedcl': ('backbone.', ),
    'mmpretrain': ('backbone.', ),
    'liftedcl-authors': ('module.encoder_q.', 'encoder_q.'),
    'moco': ('module.encoder_q.', 'encoder_q.'),
    'plain': ('', ),
}
KEY_PREFIXES = {
    # EMA of nn.Sequential(backbone, neck, equiv_neck): encoder_k.module.0.* (LiftedCL; the
    # MMPretrain names stay accepted for --source liftedcl on such a checkpoint)
    'liftedcl': ('encoder_k.module.0.', 'target_net.module.0.', 'momentum_encoder.module.0.'),
    # MMPretrain's MoCo / DenseCL: target_net.module.0.*, MoCoV3: momentum_encoder.module.0.*
    'mmpretrain': ('target_net.module.0.', 'momentum_encoder.module.0.'),
    'liftedcl-authors': ('module.encoder_k.', 'encoder_k.'),
    'moco': ('module.encoder_k.', 'encoder_k.'),
    'plain': (),
}
# Modules of the authors' PoseResNet_Adv besides the ResNet (moco/pose_res_adv.py): what tells
# their checkpoints from MoCo's, whose encoder only adds ``fc``.
AUTHORS_HEADS = ('mlp_invariant', 'conv_variant', 'lifting')
SOURCES = {
    'liftedcl': 'liftedcl_mm checkpoint (backbone.*)',
    'mmpretrain': 'MMPretrain self-supervised checkpoint (backbone.* with target_net.* or '
                  'momentum_encoder.*)',
    'liftedcl-authors': "LiftedCL authors' checkpoint (train_adv.py / released weights: "
                        'module.encoder_q.* with mlp_invariant, conv_variant, lifting)',
    'moco': 'MoCo checkpoint (main_moco.py: module.encoder_q.* with the fc MLP)',
    'plain': 'plain ResNet state dict',
}
LAYOUTS_HELP = (
    'Recognised layouts: liftedcl (liftedcl_mm/MMEngine: state_dict with backbone.conv1.weight, '
    'backbone.layer1.*), mmpretrain (MMPretrain MoCo/MoCoV3/DenseCL: backbone.* with '
    'target_net.* or momentum_encoder.*), liftedcl-authors (the LiftedCL authors\' '
    'train_adv.py/train_cl.py and released weights: state_dict with '
    'module.encoder_q.{conv1,layer1-4}.* and '
    'module.encoder_q.{mlp_invariant,conv_variant,lifting}.*), moco (MoCo v1/v2 main_moco.py: '
    'state_dict with module.encoder_q.* and module.encoder_q.fc.*), plain (conv1.weight, '
    'layer1.*)')


class NotAResNetError(ValueError):
    """The checkpoint holds no ResNet encoder where one was expected."""


def get_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint: its ``state_dict``/``model`` entry or itself."""
    if not isinstance(checkpoint, dict):
        raise NotAResNetError(
            f'expected a dict-like checkpoint, found {type(checkpoint).__name__}')
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            return checkpoint[key]
    return checkpoint


def _summary(state: dict, limit: int = 8) -> str:
    """Describe what a dict holds: top-level key prefixes with counts and a few shapes."""
    prefixes = OrderedDict()
    for key in state:
        head = str(key).split('.')[0]
        prefixes[head] = prefixes.get(head, 0) + 1
    parts = [f'{p}.* ({n})' for p, n in list(prefixes.items())[:limit]]
    shapes = []
    for key, value in list(state.items())[:4]:
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        shapes.append(f'{key}: {shape}')
    more = '' if len(prefixes) <= limit else f', ... ({len(prefixes)} prefixes)'
    return f'prefixes [{", ".join(parts)}{more}]; e.g. {"; ".join(shapes)}'


def detect_source(state: dict) -> str:
    """``'liftedcl'``, ``'mmpretrain'``, ``'liftedcl-authors'``, ``'moco'`` or ``'plain'``."""
    keys = [str(k) for k in state]
    if any(k.startswith('backbone.layer') or k == 'backbone.conv1.weight' for k in keys):
        mmpretrain = (any(k.startswith(('target_net.', 'momentum_encoder.')) for k in keys)
                      and not any(k.startswith('encoder_k.') for k in keys))
        return 'mmpretrain' if mmpretrain else 'liftedcl'
    query = [m.group(2) for m in (re.match(r'(module\.)?encoder_q\.([^.]+)', k) for k in keys)
             if m]
    if query:
        return 'liftedcl-authors' if set(query) & set(AUTHORS_HEADS) else 'moco'
    if 'conv1.weight' in keys and any(k.startswith('layer1.') for k in keys):
        return 'plain'
    raise NotAResNetError(
        f'cannot tell the checkpoint format (no backbone.*, module.encoder_q.* or plain ResNet '
        f'keys). {LAYOUTS_HELP}. This file holds {_summary(state)}')


def _check_resnet(backbone: dict, where: str, state: dict) -> None:
    """Raise unless ``backbone`` looks like a complete ResNet state dict."""
    problems = []
    stem = backbone.get('conv1.weight')
    if not torch.is_tensor(stem) or stem.dim() != 4 or stem.shape[1] != 3:
        found = tuple(stem.shape) if torch.is_tensor(stem) else None
        problems.append(f'conv1.weight should be a (C, 3, k, k) conv, found {found}')
    for name in RESNET_MODULES[1:]:
        if not any(k.startswith(name + '.') for k in backbone):
            problems.append(f'no {name}.* weights')
    for key, value in backbone.items():
        if not torch.is_tensor(value):
            problems.append(f'{key} is a {type(value).__name__}, not a tensor')
            break
    if problems:
        raise NotAResNetError(f'{where} is not a ResNet encoder: {"; ".join(problems)}. '
                              f'The checkpoint holds {_summary(state)}')


def extract_backbone(checkpoint,
                     source: str = 'auto',
                     key_encoder: bool = False) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """Return the ResNet backbone of ``checkpoint`` as a plain tensor state dict.

    Args:
        checkpoint (dict): A loaded checkpoint (see module doc for the formats).
        source (str): ``'auto'``, ``'liftedcl'``, ``'mmpretrain'``, ``'liftedcl-authors'``,
            ``'moco'`` or ``'plain'``.
        key_encoder (bool): Take the momentum (key) encoder instead of the query encoder.

    Returns:
        tuple: ``(state_dict, info)``; ``info`` has ``source``, ``prefix`` and ``dropped``
        (top-level names of the encoder's non-ResNet modules that were left out, e.g. ``fc``).
    """
    state = get_state_dict(checkpoint)
    if source == 'auto':
        source = detect_source(state)
    if source not in QUERY_PREFIXES:
        raise ValueError(f'unknown --source {source!r}; choose auto, '
                         f'{", ".join(QUERY_PREFIXES)}')
    candidates = (KEY_PREFIXES if key_encoder else QUERY_PREFIXES)[source]
    prefix: Optional[str] = None
    for cand in candidates:
        if f'{cand}conv1.weight' in state:
            prefix = cand
            break
    if prefix is None:
        which = 'key' if key_encoder else 'query'
        raise NotAResNetError(
            f'no {which}-encoder ResNet found for source {source!r} (looked for '
            f'{[c + "conv1.weight" for c in candidates]}). {LAYOUTS_HELP}. This file holds '
            f'{_summary(state)}')
    backbone = OrderedDict()
    dropped = OrderedDict()
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.split('.')[0] in RESNET_MODULES:
            backbone[name] = value
        else:
            dropped[name.split('.')[0]] = True
    where = f'the {source} checkpoint under prefix {prefix!r}'
    _check_resnet(backbone, where, state)
    plain = OrderedDict((k, v.detach().cpu().clone().contiguous()) for k, v in backbone.items())
    return plain, dict(source=source, prefix=prefix, dropped=list(dropped))


def save_atomic(obj, out_path: str) -> None:
    """``torch.save`` to a temporary file next to ``out_path``, then rename over it.

    The file gets the mode of a plain ``open()`` under the umask (e.g. 0644), not mkstemp's 0600.
    """
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    atomic_write(out_path, lambda f: torch.save(obj, f), suffix='.pth')


def convert(in_path: str, out_path: str, source: str = 'auto', key_encoder: bool = False) -> dict:
    """Read ``in_path`` safely, extract its backbone and write it atomically to ``out_path``."""
    if osp.exists(out_path) and osp.exists(in_path) and osp.samefile(in_path, out_path):
        raise ValueError(f'output "{out_path}" is the input checkpoint; refusing to overwrite it')
    if osp.abspath(in_path) == osp.abspath(out_path):
        raise ValueError(f'output "{out_path}" is the input checkpoint; refusing to overwrite it')
    checkpoint = load_checkpoint_safely(in_path, map_location='cpu')
    try:
        state, info = extract_backbone(checkpoint, source=source, key_encoder=key_encoder)
    except NotAResNetError as err:
        raise NotAResNetError(f'"{in_path}": {err}') from None
    save_atomic(state, out_path)
    info['num_tensors'] = len(state)
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Extract the ResNet backbone of a liftedcl_mm, LiftedCL-authors or MoCo '
        'checkpoint as a plain tensor state dict for MMPose/MMPretrain/torchvision')
    parser.add_argument('src', help='input checkpoint')
    parser.add_argument('dst', help='output backbone state dict')
    parser.add_argument(
        '--source', default='auto', choices=['auto'] + list(QUERY_PREFIXES),
        help='checkpoint layout (default: detect it from the keys)')
    parser.add_argument(
        '--key-encoder', action='store_true',
        help='extract the momentum (key) encoder instead of the query encoder')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    info = convert(args.src, args.dst, source=args.source, key_encoder=args.key_encoder)
    dropped = ', '.join(info['dropped']) or 'nothing'
    print(f'source: {info["source"]} -- {SOURCES[info["source"]]}')
    print(f'{args.src} ({info["source"]}, prefix {info["prefix"]!r}) -> {args.dst}: '
          f'{info["num_tensors"]} tensors; dropped {dropped}')


if __name__ == '__main__':
    main()
