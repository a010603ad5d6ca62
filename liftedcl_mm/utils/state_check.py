"""Does a checkpoint fit a model? Named answers instead of MMEngine's warnings.

MMEngine loads with ``strict=False`` on resume, in ``tools/test.py`` and for
``init_cfg=dict(type='Pretrained')``: a mismatch is a logged warning and the run goes on with
reset queues, random heads or a random backbone. These checks turn that into an error that names
the tensors and where to look.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

__all__ = [
    'StateMismatch', 'compare_state', 'checkpoint_state_dict', 'likely_config_keys',
    'check_resume_fits', 'check_test_checkpoint'
]

# Checkpoint key prefixes of LiftedCL whose shape comes from a config key elsewhere.
_CONFIG_HINTS = OrderedDict([
    ('queue_inv.', 'model.queue_len / model.feat_dim'),
    ('queue_equiv.', 'model.queue_len / model.feat_dim'),
    ('encoder_k.', 'model.backbone / model.neck / model.equiv_neck (mirrored by the key '
     'encoder)'),
])


class StateMismatch(ValueError):
    """A checkpoint's tensors do not fit the model (missing, unexpected or other shapes)."""


def checkpoint_state_dict(checkpoint) -> Mapping[str, torch.Tensor]:
    """The weights of a loaded checkpoint, with DataParallel's ``module.`` prefix removed."""
    state = checkpoint
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), Mapping):
                state = checkpoint[key]
                break
    if not isinstance(state, Mapping):
        raise StateMismatch(f'the checkpoint holds a {type(state).__name__}, not a state dict')
    return OrderedDict((k[len('module.'):] if str(k).startswith('module.') else k, v)
                       for k, v in state.items())


def compare_state(expected: Mapping[str, torch.Tensor],
                  found: Mapping[str, torch.Tensor]) -> Dict[str, list]:
    """Keys missing from ``found``, unexpected in it, and ``(key, expected, found)`` shapes."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = []
    for key, value in expected.items():
        other = found.get(key)
        if torch.is_tensor(value) and torch.is_tensor(other) and value.shape != other.shape:
            shapes.append((key, tuple(value.shape), tuple(other.shape)))
    return dict(missing=missing, unexpected=unexpected, shapes=shapes)


def likely_config_keys(keys: List[str]) -> List[str]:
    """Config keys most likely responsible for mismatching tensors ``keys``."""
    hints = []
    for key in keys:
        hint = next((h for p, h in _CONFIG_HINTS.items() if key.startswith(p)), None)
        hint = hint or f'model.{key.split(".")[0]}'
        if hint not in hints:
            hints.append(hint)
    return hints


def describe(diff: Dict[str, list], limit: int = 4) -> Tuple[str, List[str]]:
    """One line per kind of mismatch, and the involved tensor names."""

    def some(names):
        more = f', ... ({len(names)} in all)' if len(names) > limit else ''
        return ', '.join(names[:limit]) + more

    lines, names = [], []
    if diff['shapes']:
        lines.append('other shapes: ' + some(
            [f'{k} {list(f)} in the checkpoint vs {list(e)} in the model'
             for k, e, f in diff['shapes']]))
        names += [k for k, _, _ in diff['shapes']]
    if diff['missing']:
        lines.append('missing from the checkpoint: ' + some(diff['missing']))
        names += diff['missing']
    if diff['unexpected']:
        lines.append('not in the model: ' + some(diff['unexpected']))
        names += diff['unexpected']
    return '; '.join(lines), names


def check_resume_fits(model: torch.nn.Module, path: str, verified: bool = False) -> None:
    """Refuse to resume from ``path`` unless its weights fit ``model`` exactly.

    MMEngine would warn "size mismatch", reset what does not fit (e.g. both queues after a
    ``queue_len`` change) and prune the old checkpoints; or fail inside the optimizer after a
    ``depth``/``feat_dim`` change. Only keys and shapes are compared: the tensors are mapped,
    not read (the runner reads them next).

    Args:
        model (nn.Module): The model to resume (a wrapped one is unwrapped).
        path (str): The checkpoint.
        verified (bool): ``path``'s CRCs were just checked; do not read it again for that.

    Raises:
        StateMismatch: Naming the tensors and the config keys likely responsible.
    """
    from mmengine.model import is_model_wrapper

    from .checkpoint import load_checkpoint_safely
    model = model.module if is_model_wrapper(model) else model
    state = checkpoint_state_dict(load_checkpoint_safely(path, check_crc=not verified, mmap=True))
    diff = compare_state(model.state_dict(), state)
    if not any(diff.values()):
        return
    text, names = describe(diff)
    raise StateMismatch(
        f'cannot resume from "{path}": it does not fit the model of this config ({text}). '
        f'Likely changed config keys: {", ".join(likely_config_keys(names))}. Resume with the '
        'config of that run (a copy is saved in its work dir), or train into a new --work-dir.')


def check_test_checkpoint(model: torch.nn.Module, path: str, max_missing: int = 0) -> None:
    """Refuse to evaluate ``path`` if it leaves parts of ``model`` at their initial values.

    A pre-training checkpoint given to ``tools/test.py`` of an MMPose config would otherwise be
    evaluated with a random head (AP 0.000, exit status 0).

    Raises:
        StateMismatch: Naming the modules the checkpoint does not cover.
    """
    from mmengine.model import is_model_wrapper

    from .checkpoint import load_checkpoint_safely
    model = model.module if is_model_wrapper(model) else model
    state = checkpoint_state_dict(load_checkpoint_safely(path))
    diff = compare_state(model.state_dict(), state)
    if len(diff['missing']) <= max_missing and not diff['shapes']:
        return
    text, _ = describe(dict(diff, unexpected=[]))
    modules = sorted({k.split('.')[0] for k in diff['missing'] + [k for k, _, _ in
                                                                   diff['shapes']]})
    held = sorted({k.split('.')[0] for k in state})
    raise StateMismatch(
        f'"{path}" does not hold this model\'s weights for {", ".join(modules)} ({text}); it '
        f'holds {", ".join(held[:8])}. A LiftedCL pre-training checkpoint must be fine-tuned '
        'first (tools/train.py with an MMPose config whose backbone init_cfg points at it).')
