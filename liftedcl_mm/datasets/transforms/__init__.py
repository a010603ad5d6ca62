from .formatting import PackViewsWithGeometry
from .geometry import RandomFlipWithGeometry, RandomResizedCropWithGeometry
from .loading import LoadImageWithCheck
from .multi_view import MultiViewWithGeometry

__all__ = [
    'LoadImageWithCheck', 'RandomResizedCropWithGeometry', 'RandomFlipWithGeometry',
    'MultiViewWithGeometry', 'PackViewsWithGeometry'
]
