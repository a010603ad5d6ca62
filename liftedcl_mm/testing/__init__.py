"""Slow, obviously-correct reference implementations for tests and benchmarks."""
from .equivariant_reference import reference_align, reference_equivariant_loss

__all__ = ['reference_align', 'reference_equivariant_loss']
