"""Atomic file writes whose result has the permissions of a plain ``open()``.

``tempfile.mkstemp`` creates ``-rw-------`` files whatever the umask, so a file written to a
temporary name and renamed would stay private to its owner. :func:`atomic_write` creates the
temporary file with mode ``0o666`` filtered by the kernel (umask and default ACLs of the folder,
exactly like ``open(path, 'wb')``) and renames it over ``path`` only once it is complete.
"""
import os
import os.path as osp
import secrets
from typing import BinaryIO, Callable, Union

__all__ = ['TMP_PREFIX', 'atomic_write', 'current_umask', 'umask_mode']

# Prefix of the temporary files; tools remove leftovers of a killed run by this prefix.
TMP_PREFIX = '.tmp_'


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    Reads ``Umask:`` of ``/proc/self/status`` (Linux >= 4.7). Elsewhere it falls back to setting
    and restoring the umask, which is briefly wrong for other threads of the process.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def umask_mode(base: int = 0o666) -> int:
    """Mode that ``open()`` gives a new file under the current umask (e.g. 0o644 for umask 022).

    Args:
        base (int): Requested mode before the umask, 0o666 for files and 0o777 for folders.
    """
    return base & ~current_umask()


def atomic_write(path: str,
                 data: Union[bytes, str, Callable[[BinaryIO], None]],
                 suffix: str = None,
                 prefix: str = TMP_PREFIX,
                 fsync: bool = False) -> None:
    """Write a file under a temporary name in its folder, then rename it to ``path``.

    A reader (or a resumed run) never sees a half-written file under the final name, and the
    final file has the mode a plain ``open(path, 'wb')`` would give it (umask respected). The
    folder must exist. On any error, including ``KeyboardInterrupt``, the temporary file is
    removed and ``path`` is left as it was.

    Args:
        path (str): Final file path.
        data (bytes | str | callable): The content (``str`` is UTF-8 encoded) or a function
            that writes it to the binary file object it is given, e.g.
            ``lambda f: torch.save(obj, f)`` or ``lambda f: np.save(f, arr)``.
        suffix (str, optional): Suffix of the temporary name. Defaults to the extension of
            ``path``, so that tools keying on the extension still recognise it.
        prefix (str): Prefix of the temporary name. Defaults to :data:`TMP_PREFIX`.
        fsync (bool): Flush the content to disk before the rename, for files that must
            survive a power loss (slower). Defaults to False.
    """
    folder = osp.dirname(osp.abspath(path))
    if suffix is None:
        suffix = osp.splitext(path)[1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0) | \
        getattr(os, 'O_BINARY', 0)
    for _ in range(100):
        tmp = osp.join(folder, f'{prefix}{secrets.token_hex(8)}{suffix}')
        try:
            # O_EXCL: never reuse (or follow a symlink planted at) an existing name. Mode 0o666
            # lets the kernel apply the umask as for open(), unlike mkstemp's fixed 0o600.
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f'no free temporary name for {path} in {folder}')
    try:
        with os.fdopen(fd, 'wb') as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise
