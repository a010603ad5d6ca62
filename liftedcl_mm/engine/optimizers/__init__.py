# Each module registers itself on import; add one import line per new module.
from .gen_disc_constructor import GeneratorDiscriminatorOptimWrapperConstructor

__all__ = ['GeneratorDiscriminatorOptimWrapperConstructor']
