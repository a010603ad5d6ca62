# Each module registers itself on import; add one import line per new module.
from .liftedcl import LiftedCL

__all__ = ['LiftedCL']
