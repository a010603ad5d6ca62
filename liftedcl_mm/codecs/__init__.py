"""Keypoint codecs of liftedcl_mm, registered in MMPose's KEYPOINT_CODECS."""
# Each module registers itself on import; add one import line per new module.
from .root_relative_uvd import RootRelativeUVD, uvd_to_camera

__all__ = ['RootRelativeUVD', 'uvd_to_camera']
