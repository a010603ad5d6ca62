# Each module registers itself on import; add one import line per new module.
from .jdr_metric import JDRMetric

__all__ = ['JDRMetric']
