from .setup_env import register_all_modules

__all__ = ['register_all_modules']
from .checkpoint import (UnsafeCheckpointError, find_unsafe_globals, load_checkpoint_safely,
                         register_safe_globals)

__all__ += [
    'UnsafeCheckpointError', 'find_unsafe_globals', 'load_checkpoint_safely',
    'register_safe_globals'
]
from .fileio import atomic_write, umask_mode

__all__ += ['atomic_write', 'umask_mode']
