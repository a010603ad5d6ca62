# Each module registers itself on import; add one import line per new module.
from .feature_queue import FeatureQueue
from .kcs import kcs
from .momentum_encoder import MomentumEncoder
from .nonfinite import BufferSnapshot, NonFiniteGuard, nonfinite_terms
from .prior_bank import PriorBank
from .view_alignment import align_shared_regions
from .view_geometry import view_geometry

__all__ = [
    'kcs', 'FeatureQueue', 'align_shared_regions', 'view_geometry', 'PriorBank',
    'nonfinite_terms', 'BufferSnapshot', 'NonFiniteGuard', 'MomentumEncoder'
]
