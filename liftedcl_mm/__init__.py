"""liftedcl_mm: LiftedCL (ICLR 2023) as an OpenMMLab plugin."""
from .version import __version__

__all__ = ['__version__']
