"""What a work dir already holds: never train over it by accident, resume from what verifies."""
import glob
import os.path as osp
import re
from typing import Callable, List, Optional, Tuple

from .checkpoint import _is_zip_checkpoint, find_unsafe_globals, verify_zip_crc

_NUMBERED = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def list_checkpoints(work_dir: str) -> List[str]:
    """Checkpoints (``*.pth``) directly in ``work_dir``, newest first.

    Newest means the highest ``iter_N``/``epoch_N`` number, then the latest modification time.
    """
    paths = [p for p in glob.glob(osp.join(glob.escape(work_dir), '*.pth')) if osp.isfile(p)]

    def order(path):
        match = _NUMBERED.match(osp.basename(path))
        return (int(match.group(1)) if match else -1, osp.getmtime(path))

    return sorted(paths, key=order, reverse=True)


def verify_checkpoint(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None if it is intact and safe to load.

    Zip files: every member's CRC and the pickle's globals (nothing is unpickled). Legacy
    files: a full ``weights_only`` load (they have no CRCs).
    """
    if not osp.isfile(path):
        return 'missing'
    if osp.getsize(path) == 0:
        return 'empty file'
    try:
        verify_zip_crc(path) if _is_zip_checkpoint(path) else None
        unsafe = find_unsafe_globals(path)
    except Exception as err:  # noqa: BLE001  (any failure means: do not resume from it)
        return f'{type(err).__name__}: {err}'
    if unsafe:
        return f'refers to non-allow-listed globals {unsafe}'
    return None


def _last_checkpoint_target(work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """``(path named by work_dir/last_checkpoint, problem)``; both None if there is none."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None, None
    try:
        with open(marker) as f:
            target = f.read().strip()
    except (OSError, UnicodeDecodeError) as err:
        return None, f'last_checkpoint is unreadable ({err})'
    if not target:
        return None, 'last_checkpoint is empty'
    # MMEngine writes an absolute path: a work dir that was moved or copied still names the
    # old place, so a file of that name here is the one meant.
    local = osp.join(work_dir, osp.basename(target))
    return (local if osp.isfile(local) else target), None


def resolve_auto_resume(work_dir: str, log: Callable[[str], None] = print) -> Optional[str]:
    """The checkpoint ``--resume auto`` should continue from, or None for a fresh start.

    ``last_checkpoint``'s target when it verifies; otherwise the newest checkpoint that does,
    saying which were passed over and why.

    Raises:
        RuntimeError: Checkpoints exist but none verifies (listing each with its problem), so
            starting from iteration 0 would overwrite them.
    """
    if not osp.isdir(work_dir):
        return None
    target, problem = _last_checkpoint_target(work_dir)
    candidates = list_checkpoints(work_dir)
    if target is not None:
        candidates = [target] + [c for c in candidates
                                 if not osp.exists(target) or not osp.samefile(c, target)]
    rejected = []
    if problem:
        rejected.append(('last_checkpoint', problem))
    for path in candidates:
        reason = verify_checkpoint(path)
        if reason is None:
            if rejected:
                skipped = '; '.join(f'{p}: {r}' for p, r in rejected)
                log(f'[resume] WARNING: passed over {skipped}. Resuming from {path}, the newest '
                    'checkpoint that verifies.')
            return path
        rejected.append((path, reason))
    if candidates:
        found = '\n  '.join(f'{p}: {r}' for p, r in rejected)
        raise RuntimeError(
            f'--resume auto: no checkpoint in {work_dir} verifies, so there is nothing to resume '
            f'from and starting over would overwrite them:\n  {found}\nResume from a good copy '
            'with --resume PATH, or start over with --overwrite.')
    if problem:
        log(f'[resume] {problem} and {work_dir} holds no checkpoint: starting from scratch.')
    return None


def check_no_overwrite(work_dir: str) -> None:
    """Refuse to train from iteration 0 into a work dir that already holds checkpoints.

    Raises:
        FileExistsError: Naming the checkpoints and the three ways forward.
    """
    found = list_checkpoints(work_dir) if osp.isdir(work_dir) else []
    if not found and not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return
    names = ', '.join(osp.basename(p) for p in found[:5]) or 'last_checkpoint'
    more = f' and {len(found) - 5} more' if len(found) > 5 else ''
    raise FileExistsError(
        f'work dir "{work_dir}" already holds checkpoints ({names}{more}); training from '
        'iteration 0 would overwrite them. Continue that run with --resume auto, train into '
        'another --work-dir, or pass --overwrite to start over.')
