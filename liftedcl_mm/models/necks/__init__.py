# Each module registers itself on import; add one import line per new module.
from .equivariant_neck import EquivariantNeck

__all__ = ['EquivariantNeck']
