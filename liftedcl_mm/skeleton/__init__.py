from .h36m import (H36M_BONES, H36M_JOINT_NAMES, H36M_NUM_BONES,
                   H36M_NUM_JOINTS, H36M_PARENTS, bone_matrix)

__all__ = [
    'H36M_JOINT_NAMES', 'H36M_PARENTS', 'H36M_BONES', 'H36M_NUM_JOINTS',
    'H36M_NUM_BONES', 'bone_matrix'
]
