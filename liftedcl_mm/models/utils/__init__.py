# Each module registers itself on import; add one import line per new module.
from .feature_queue import FeatureQueue
from .view_alignment import align_shared_regions
from .kcs import kcs

__all__ = ['kcs', 'FeatureQueue', 'align_shared_regions']
