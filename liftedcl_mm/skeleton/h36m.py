"""The one table of the 17-joint Human3.6M skeleton.

Joint order and tree follow MMPose's ``configs/_base_/datasets/h36m.py`` (checked by
``tests/test_skeleton.py``). The prior sampler, the KCS layer, the kinematic-prior loss and every plot
read the skeleton from here and nowhere else.
"""
import numpy as np

H36M_JOINT_NAMES = (
    'root', 'right_hip', 'right_knee', 'right_foot', 'left_hip', 'left_knee',
    'left_foot', 'spine', 'thorax', 'neck_base', 'head', 'left_shoulder',
    'left_elbow', 'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist')

# Parent of each joint (-1 for the root); children always come after their parent.
H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

H36M_NUM_JOINTS = len(H36M_JOINT_NAMES)

# One bone per non-root joint: (parent, child). 16 bones for 17 joints.
H36M_BONES = tuple((p, j) for j, p in enumerate(H36M_PARENTS) if p >= 0)
H36M_NUM_BONES = len(H36M_BONES)


def bone_matrix(bones=H36M_BONES, num_joints=H36M_NUM_JOINTS):
    """The KCS bone matrix C (J, b): column k has +1 at the child and -1 at the parent of bone k.

    With joints X as rows (J, 3), the bone vectors are ``C.T @ X`` (b, 3).
    """
    mat = np.zeros((num_joints, len(bones)), dtype=np.float32)
    for k, (parent, child) in enumerate(bones):
        mat[child, k] = 1.0
        mat[parent, k] = -1.0
    return mat
