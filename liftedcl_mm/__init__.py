"""liftedcl_mm: LiftedCL (ICLR 2023) as an OpenMMLab (MMPretrain/MMPose) plugin.

Importing the package registers every component, so ``custom_imports=dict(imports=['liftedcl_mm'])``
in any MMEngine config (MMPose's included) makes our types available.
"""
from .version import __version__
from . import datasets, engine, models  # noqa: F401,E402  (registers components)

__all__ = ['__version__']
