"""Loading checkpoints without unpickling arbitrary objects.

On torch >= 2.6 ``torch.load`` defaults to ``weights_only=True``: only allow-listed globals may
appear in the pickle. MMEngine's own checkpoints (``Runner`` + ``CheckpointHook``) carry a few more
than torch allows by default: numpy arrays/scalars in the message hub's ``HistoryBuffer`` and
``getattr(HistoryBuffer, 'min')``-style references to its statistics methods. Without them a
plain ``Runner(resume=True)`` cannot read its own checkpoint, and MMPose's
``init_cfg=dict(type='Pretrained', ...)`` cannot read our full checkpoint.

:func:`register_safe_globals` allow-lists exactly those types (found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on real MMEngine/MMPose checkpoints) and
is called when ``liftedcl_mm`` is imported. ``builtins.getattr`` is *not* allow-listed as such:
the name is mapped to :func:`_history_buffer_getattr`, which only resolves HistoryBuffer's public
statistics methods, so a pickle cannot use it to reach anything else. We never fall back to
``weights_only=False``.
"""
import os
import os.path as osp
import pickle
import re
import zipfile
import zlib
from typing import Any, List, Optional

import numpy as np
import torch

__all__ = [
    'UnsafeCheckpointError', 'register_safe_globals', 'load_checkpoint_safely',
    'find_unsafe_globals', 'verify_zip_crc', 'register_safe_checkpoint_loader'
]

_REGISTERED = False


class UnsafeCheckpointError(ValueError):
    """A checkpoint whose pickle refers to globals that are not allow-listed.

    Attributes:
        path (str): The checkpoint file.
        unsafe_globals (list[str]): The offending globals, e.g. ``['os.system']``.
    """

    def __init__(self, path: str, unsafe_globals: List[str], detail: str = ''):
        self.path = path
        self.unsafe_globals = list(unsafe_globals)
        names = ', '.join(self.unsafe_globals) or '<unknown>'
        msg = (f'Refusing to load checkpoint "{path}": its pickle refers to global(s) '
               f'{names} that are not allow-listed, and unpickling them could run arbitrary '
               'code. Only load files you trust; if this is a trusted checkpoint holding a '
               'harmless type, allow-list it with torch.serialization.add_safe_globals.')
        if detail:
            msg += f' (torch: {detail})'
        super().__init__(msg)


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` inside ``weights_only`` unpickling.

    MMEngine's ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer,
    'mean')``; nothing else in our checkpoints needs ``getattr``.
    """
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'}
    allowed.update(k for k in HistoryBuffer._statistics_methods if not k.startswith('_'))
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed while loading a checkpoint; only '
        f'HistoryBuffer statistics methods {sorted(allowed)} are.')


def _numpy_globals() -> list:
    """numpy types a pickled ndarray / numpy scalar refers to (numpy 1.x and 2.x names)."""
    entries = [np.ndarray, np.dtype]
    # The same functions live under numpy.core (1.x) and numpy._core (2.x); pickles name the
    # module of the numpy that wrote them, so register both names where they resolve.
    multiarray = getattr(np, '_core', None)
    multiarray = getattr(multiarray, 'multiarray', None) or np.core.multiarray
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    # numpy >= 1.25 may pickle dtypes by their class (numpy.dtypes.Float32DType, ...).
    for name in ('bool_', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                 'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128'):
        dtype_cls = type(np.dtype(getattr(np, name)))
        if dtype_cls is not np.dtype:
            entries.append(dtype_cls)
    return entries


def register_safe_globals() -> None:
    """Allow-list the globals MMEngine/MMPose/liftedcl_mm checkpoints contain (idempotent).

    Registered: ``numpy.ndarray``, ``numpy.dtype`` and its per-type classes,
    ``numpy.core.multiarray._reconstruct``/``scalar`` (and their ``numpy._core`` names),
    ``mmengine.logging.HistoryBuffer`` and a restricted ``builtins.getattr`` (see
    :func:`_history_buffer_getattr`). ``collections.OrderedDict`` is allowed by torch already.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    from mmengine.logging import HistoryBuffer
    entries = _numpy_globals()
    # numpy pickles an empty array's buffer as bytes() (e.g. MMPose's H36M metainfo sigmas=[]);
    # building a bytes object runs no code.
    entries.append(bytes)
    entries.append(HistoryBuffer)
    entries.append((_history_buffer_getattr, 'builtins.getattr'))
    torch.serialization.add_safe_globals(entries)
    _REGISTERED = True


def find_unsafe_globals(path: str) -> List[str]:
    """Globals in the checkpoint ``path`` that ``weights_only`` loading does not allow.

    Reads the pickle opcodes only (nothing is executed). Returns ``[]`` for a safe file. A
    legacy (non-zip) file cannot be scanned this way: it is fully loaded with
    ``weights_only=True`` instead (still nothing is executed), so it is accepted or refused
    exactly as :func:`load_checkpoint_safely` would.
    """
    register_safe_globals()
    if not _is_zip_checkpoint(path):
        try:
            load_checkpoint_safely(path)
        except UnsafeCheckpointError as err:
            return err.unsafe_globals or ['<unknown>']
        return []
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    allowed = {name for name in _allowed_names()}
    return [name for name in unsafe if name not in allowed]


def _allowed_names() -> set:
    names = set()
    for entry in torch.serialization.get_safe_globals():
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


def _is_zip_checkpoint(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def verify_zip_crc(path: str) -> None:
    """Check every member of a zip-format checkpoint against its stored CRC-32.

    torch's reader does not check them, so a flipped bit inside a stored tensor would load
    silently with wrong weights. Reading the whole file costs about 1 s per GB.

    Raises:
        ValueError: Naming the file and the first corrupt member.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise ValueError(f'"{path}" is a damaged checkpoint (zip structure): {err}') from err
    if bad is not None:
        raise ValueError(f'"{path}" is a damaged checkpoint: member "{bad}" fails its CRC check '
                         '(the file was corrupted after it was written)')


def load_checkpoint_safely(path: str, map_location: Optional[Any] = 'cpu', *,
                           check_crc: bool = True, mmap: bool = False) -> Any:
    """``torch.load`` with an explicit ``weights_only=True``, CRC checks and clear errors.

    ``weights_only=True`` is passed explicitly, so it holds under
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` too. Zip-format files are CRC-checked first
    (:func:`verify_zip_crc`); legacy-format files (``_use_new_zipfile_serialization=False``,
    e.g. the 2020 MoCo v2 release) have no CRCs and are read with the same restricted unpickler.

    Args:
        path (str): Checkpoint file.
        map_location: As in ``torch.load``. Defaults to ``'cpu'``.
        check_crc (bool): Check the zip CRCs first. Pass False only for a file that was just
            verified (:func:`liftedcl_mm.utils.work_dir.verify_checkpoint`). Defaults to True.
        mmap (bool): Map a zip-format file's tensors instead of reading them (``torch.load``'s
            ``mmap``), for callers that only look at keys and shapes; ignored for legacy files.
            Defaults to False.

    Returns:
        The unpickled object (usually a dict).

    Raises:
        FileNotFoundError: ``path`` does not exist or is a directory.
        UnsafeCheckpointError: the pickle refers to globals that are not allow-listed (e.g. a
            ``__reduce__`` calling ``os.system``); nothing of it is executed.
        ValueError: the file is not a torch checkpoint (truncated, corrupt, other format) or a
            zip member fails its CRC check.
    """
    path = os.fspath(path)
    if not osp.exists(path):
        raise FileNotFoundError(f'Checkpoint file not found: "{path}"')
    if osp.isdir(path):
        raise FileNotFoundError(f'Checkpoint path "{path}" is a directory, not a file')
    register_safe_globals()
    is_zip = _is_zip_checkpoint(path)
    if is_zip and check_crc:
        verify_zip_crc(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap and is_zip)
    except pickle.UnpicklingError as err:
        full = str(err)
        # torch prefixes a generic paragraph; keep the line that names the cause
        causes = [line for line in full.splitlines()
                  if line.strip() and not line.startswith(('Weights only load failed', 'Check the',
                                                           'WeightsUnpickler error'))]
        reasons = [line for line in full.splitlines() if 'WeightsUnpickler error' in line]
        detail = (reasons or causes or [''])[0].strip()
        unsafe = []
        if _is_zip_checkpoint(path):
            try:
                unsafe = find_unsafe_globals(path)
            except Exception:  # noqa: BLE001  (best effort: the message below still explains)
                unsafe = []
        if not unsafe:
            unsafe = re.findall(r'GLOBAL ([\w.]+)', full) or re.findall(
                r'unrecognized function (\S+)', full) or re.findall(r'(getattr\(.*?\))', full)
        if unsafe or any(word in full for word in ('GLOBAL', 'reduce', 'allowlisted',
                                                     'not allowed', 'Can only')):
            raise UnsafeCheckpointError(path, unsafe, detail) from err
        raise ValueError(f'"{path}" is not a valid torch checkpoint: {detail}') from err
    except Exception as err:  # noqa: BLE001  (garbage bytes fail in many ways inside torch)
        raise ValueError(f'"{path}" is not a valid torch checkpoint (corrupt, truncated or '
                         f'another format): {type(err).__name__}: {err}') from err


def _load_from_local(filename: str, map_location=None) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for local paths (:func:`load_checkpoint_safely`)."""
    return load_checkpoint_safely(osp.expanduser(filename), map_location=map_location)


def _load_from_http(filename: str, map_location=None, model_dir: Optional[str] = None,
                    progress: bool = False) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for URLs: download (rank 0 first), then load safely."""
    from urllib.parse import urlparse

    from mmengine.dist import barrier, get_dist_info
    from torch.hub import download_url_to_file, get_dir
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        os.makedirs(model_dir, exist_ok=True)
        download_url_to_file(filename, cached, progress=progress)
    if world_size > 1:
        barrier()  # the other ranks read the file once rank 0 has it
    return load_checkpoint_safely(cached, map_location=map_location)


def register_safe_checkpoint_loader() -> None:
    """Route MMEngine's local and http(s) checkpoint reading through the safe loader.

    Resume, ``load_from`` and ``init_cfg=dict(type='Pretrained')`` (MMPose's included) all read
    through MMEngine's ``CheckpointLoader``, which calls ``torch.load`` without ``weights_only``:
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` would make them unpickle anything. Called when
    ``liftedcl_mm`` is imported (idempotent). The ``torchvision://``/``open-mmlab://`` model-zoo
    schemes keep MMEngine's reader.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=_load_from_http, force=True)
