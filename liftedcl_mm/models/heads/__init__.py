# Each module registers itself on import; add one import line per new module.
from .kcs_discriminator import KCSDiscriminator
from .lifting_head import LiftingHead, ResidualFCBlock
from .lifting_pose_head import LiftingHeatmapHead
from .uvd_regression_head import UVDRegressionHead

__all__ = ['LiftingHead', 'KCSDiscriminator', 'ResidualFCBlock', 'LiftingHeatmapHead',
           'UVDRegressionHead']
