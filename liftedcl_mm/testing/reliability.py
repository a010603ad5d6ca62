"""Probes for the reliability tests: record what each iteration saw, stop a run abruptly, and
compare two checkpoints tensor by tensor.

Not imported by ``liftedcl_mm``; a test config lists it in ``custom_imports`` to register the
hooks.
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
import random
import subprocess
import sys
from typing import Any, Dict, Iterable, List

import numpy as np
import torch
from mmengine.hooks import Hook

from liftedcl_mm.registry import HOOKS

__all__ = [
    'BatchRecorderHook', 'ExitAfterIterHook', 'NonFiniteLossHook', 'flatten_state',
    'checkpoint_differences', 'tensor_digest'
]


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (bit-exact fingerprint)."""
    tensor = tensor.detach().cpu().contiguous()
    h = hashlib.sha256(f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
    h.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    return h.hexdigest()


def _rng_digest() -> Dict[str, str]:
    np_state = np.random.get_state()
    return dict(
        torch=hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest(),
        numpy=hashlib.sha256(np_state[1].tobytes() + repr(np_state[2:]).encode()).hexdigest(),
        python=hashlib.sha256(repr(random.getstate()).encode()).hexdigest())


@HOOKS.register_module()
class BatchRecorderHook(Hook):
    """Appends one JSON line per training iteration to ``<work_dir>/<filename>``.

    Each line holds the iteration, the ``img_path`` of every sample, a digest of every input
    view (before preprocessing, so random crops/colour changes are covered), a digest of the
    view boxes/flips, the global RNG states before the iteration and the logged losses as
    exact float hex strings. Lines are flushed at once so that a killed run keeps them.

    Args:
        filename (str): File name inside the work dir. Defaults to ``'batches.jsonl'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, filename: str = 'batches.jsonl') -> None:
        self.filename = filename
        self._pending = None

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        samples = data_batch['data_samples']
        geometry = [np.asarray(s.view_bboxes, dtype=np.float32).tobytes()
                    + np.asarray(s.view_flips, dtype=bool).tobytes() for s in samples]
        self._pending = dict(
            iter=runner.iter,
            img_paths=[osp.basename(s.img_path) for s in samples],
            inputs=[tensor_digest(view) for view in data_batch['inputs']],
            geometry=hashlib.sha256(b''.join(geometry)).hexdigest(),
            rng=_rng_digest())

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        record = self._pending or dict(iter=runner.iter)
        record['losses'] = {
            k: float(v).hex() for k, v in sorted((outputs or {}).items())
            if k.startswith('loss')
        }
        with open(osp.join(runner.work_dir, self.filename), 'a') as f:
            f.write(json.dumps(record) + '\n')
            f.flush()
            os.fsync(f.fileno())
        self._pending = None


@HOOKS.register_module()
class ExitAfterIterHook(Hook):
    """Ends the process with ``os._exit`` right after iteration ``exit_after`` (1-based) is
    complete and checkpointed: an abrupt stop (no cleanup), like a kill between iterations.

    Its priority is ``LOWEST`` so that it runs after the checkpoint hook.

    Args:
        exit_after (int): Iteration after which to exit.
        exit_code (int): Process exit status. Defaults to 3.
    """

    priority = 'LOWEST'

    def __init__(self, exit_after: int, exit_code: int = 3) -> None:
        self.exit_after = int(exit_after)
        self.exit_code = int(exit_code)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        if runner.iter + 1 == self.exit_after:
            os._exit(self.exit_code)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Makes the loss module ``term`` of the model return NaN during iteration ``at_iter``
    (0-based), as a diverging run would.

    Args:
        term (str): Attribute name of a loss module of the model, e.g. ``'loss_equiv'``.
        at_iter (int): The iteration whose loss is poisoned.
    """

    priority = 'VERY_HIGH'

    def __init__(self, term: str, at_iter: int) -> None:
        self.term = term
        self.at_iter = int(at_iter)
        self._original = None

    def _module(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        return getattr(model, self.term)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if runner.iter != self.at_iter:
            return
        module = self._module(runner)
        original = module.forward
        self._original = original

        def poisoned(*args, **kwargs):
            return original(*args, **kwargs) * float('nan')

        module.forward = poisoned

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        if self._original is not None:
            del self._module(runner).forward  # back to the class's forward
            self._original = None


def flatten_state(obj: Any, prefix: str = '') -> Dict[str, Any]:
    """Nested dicts/lists/tuples -> ``{'a/b/0': leaf}`` (leaves: tensors, arrays, scalars)."""
    flat = dict()
    if isinstance(obj, dict):
        for key, value in obj.items():
            flat.update(flatten_state(value, f'{prefix}{key}/'))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            flat.update(flatten_state(value, f'{prefix}{i}/'))
    else:
        flat[prefix.rstrip('/')] = obj
    return flat


def _same(a: Any, b: Any) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b):
        return (torch.is_tensor(a) and torch.is_tensor(b) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex()
    return type(a) is type(b) and a == b


def checkpoint_differences(a: dict, b: dict,
                           sections: Iterable[str] = ('state_dict', 'optimizer',
                                                      'param_schedulers'),
                           runtime_keys: Iterable[str] = ('iter', 'epoch', 'max_iters',
                                                          'keep_ckpt_ids')) -> List[str]:
    """Keys at which two MMEngine checkpoints differ (bit-exact); ``[]`` when identical.

    Compares every leaf of ``sections`` (model tensors, optimizer and scheduler states),
    ``meta['iter']`` and the ``runtime_keys`` of the message hub's ``runtime_info``. Wall-clock
    entries (times, paths of the work dir) are not compared.
    """
    diffs = []
    for section in sections:
        if section not in a or section not in b:
            diffs.append(f'{section} (missing)')
            continue
        flat_a, flat_b = flatten_state(a[section], f'{section}/'), flatten_state(
            b[section], f'{section}/')
        diffs += [f'{k} (only in one)' for k in sorted(set(flat_a) ^ set(flat_b))]
        diffs += [k for k in flat_a if k in flat_b and not _same(flat_a[k], flat_b[k])]
    if a['meta'].get('iter') != b['meta'].get('iter'):
        diffs.append('meta/iter')
    info_a, info_b = a['message_hub']['runtime_info'], b['message_hub']['runtime_info']
    for key in runtime_keys:
        if not _same(info_a.get(key), info_b.get(key)):
            diffs.append(f'message_hub/runtime_info/{key}')
    return diffs


REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def subprocess_env() -> dict:
    """Environment for tool subprocesses of the tests: one thread each, the checkout importable."""
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                PYTHONPATH=f'{REPO_ROOT}:{os.environ.get("PYTHONPATH", "")}')


def run_python(args, timeout=240) -> subprocess.CompletedProcess:
    """Run ``python *args`` from the repository root, capturing text output."""
    return subprocess.run([sys.executable] + list(args), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env=subprocess_env())


@contextlib.contextmanager
def umask(mask: int):
    """Run the block under the process umask ``mask`` (file-mode tests), then restore it."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)
