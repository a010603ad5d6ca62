from .h36m import (H36M_BONE_COLORS, H36M_BONE_PARENTS, H36M_BONES, H36M_FORWARD_AXIS,
                   H36M_JOINT_NAMES, H36M_NUM_BONES, H36M_NUM_JOINTS, H36M_PARENTS,
                   H36M_RIGHT_AXIS, H36M_ROTATION_DISTRIBUTIONS, H36M_ROTATION_LIMITS,
                   H36M_SYMMETRIC_BONES, H36M_TEMPLATE_BONES, H36M_UP_AXIS, bone_matrix)
from .stats import (PRIOR_STAT_TARGETS, check_prior_statistics, format_statistics,
                    prior_statistics, skeleton_measures, up_vector)

__all__ = [
    'H36M_BONE_COLORS', 'H36M_JOINT_NAMES', 'H36M_PARENTS', 'H36M_BONES', 'H36M_NUM_JOINTS',
    'H36M_NUM_BONES', 'bone_matrix', 'H36M_TEMPLATE_BONES', 'H36M_ROTATION_LIMITS',
    'H36M_ROTATION_DISTRIBUTIONS', 'H36M_SYMMETRIC_BONES', 'H36M_BONE_PARENTS',
    'H36M_FORWARD_AXIS', 'H36M_UP_AXIS', 'H36M_RIGHT_AXIS', 'PRIOR_STAT_TARGETS',
    'prior_statistics', 'check_prior_statistics', 'format_statistics', 'skeleton_measures',
    'up_vector'
]
