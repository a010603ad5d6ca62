"""liftedcl_mm: LiftedCL (ICLR 2023) as an OpenMMLab (MMPretrain/MMPose) plugin.

Importing the package registers every component, so ``custom_imports=dict(imports=['liftedcl_mm'])``
in any MMEngine config (MMPose's included) makes our types available.
"""
from .version import __version__
from . import codecs, datasets, engine, evaluation, models  # noqa: F401,E402  (registration)
from .utils.checkpoint import (register_safe_checkpoint_loader,  # noqa: E402
                               register_safe_globals)

# MMEngine checkpoints hold numpy objects; torch.load(weights_only=True) needs them allow-listed
# (resume, init_cfg) while arbitrary pickled objects stay refused, and MMEngine's own loader must
# ask for weights_only explicitly (it does not, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD would win).
register_safe_globals()
register_safe_checkpoint_loader()

from .utils.pretrained_init import register_checked_pretrained_init  # noqa: E402

# init_cfg Pretrained that leaves most of the module at random is an error, not a warning.
register_checked_pretrained_init()

__all__ = ['__version__']
