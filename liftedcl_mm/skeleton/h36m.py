"""The one table of the 17-joint Human3.6M skeleton.

Joint order and tree follow MMPose's ``configs/_base_/datasets/h36m.py`` (checked by
``tests/test_skeleton.py``). The prior sampler, the KCS layer, the kinematic-prior loss and every
plot read the skeleton from here and nowhere else.
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


# --- Template skeleton and rotation limits of the prior sampler (paper App. B) -------------------
# Frame: +X subject's left, +Y forward, +Z up; millimetres. Lengths are the typical H36M bone
# lengths (Human3.6M subject S1, as used by common 3D-lifting baselines); the template stands
# upright with the arms hanging down, so every limb bone points along -Z.
_HIP, _THIGH, _SHIN = 132.95, 442.89, 454.21
_SPINE, _THORAX, _NECK, _HEAD = 233.38, 257.08, 121.13, 115.00
_CLAVICLE, _UPPER_ARM, _FOREARM = 151.03, 278.88, 251.73
# The neck joint (nose level) lies slightly in front of the thorax: that bone tilts ~11.5 deg
# forward.
_NECK_DIR = np.array([0.0, 0.2, 0.98]) / np.linalg.norm([0.0, 0.2, 0.98])

# One row per bone of H36M_BONES, in the same order.
H36M_TEMPLATE_BONES = np.array([
    [-_HIP, 0.0, 0.0],  # root -> right_hip
    [0.0, 0.0, -_THIGH],  # right_hip -> right_knee
    [0.0, 0.0, -_SHIN],  # right_knee -> right_foot
    [_HIP, 0.0, 0.0],  # root -> left_hip
    [0.0, 0.0, -_THIGH],  # left_hip -> left_knee
    [0.0, 0.0, -_SHIN],  # left_knee -> left_foot
    [0.0, 0.0, _SPINE],  # root -> spine
    [0.0, 0.0, _THORAX],  # spine -> thorax
    list(_NECK * _NECK_DIR),  # thorax -> neck_base
    [0.0, 0.0, _HEAD],  # neck_base -> head
    [_CLAVICLE, 0.0, 0.0],  # thorax -> left_shoulder
    [0.0, 0.0, -_UPPER_ARM],  # left_shoulder -> left_elbow
    [0.0, 0.0, -_FOREARM],  # left_elbow -> left_wrist
    [-_CLAVICLE, 0.0, 0.0],  # thorax -> right_shoulder
    [0.0, 0.0, -_UPPER_ARM],  # right_shoulder -> right_elbow
    [0.0, 0.0, -_FOREARM],  # right_elbow -> right_wrist
], dtype=np.float64)
H36M_TEMPLATE_BONES.setflags(write=False)

# Per-bone Euler-angle ranges in degrees, ((a_lo, a_hi), (b_lo, b_hi), (c_lo, c_hi)).
# Each bone's sampled vector is R @ (alpha * template bone) with R = Rx(a) @ Ry(b) @ Rz(c), i.e.
# c about Z first, then b about Y, then a about X (fixed body axes; scipy's intrinsic 'XYZ').
# Rotations are absolute (relative to the template, not to the parent bone), as in the paper.
# What the angles do to a template direction:
#   downward bone (0, 0, -1) -> (-sin b, cos b sin a, -cos b cos a): a > 0 swings it forward,
#     b > 0 swings it towards the subject's right (-X); c spins it about itself (no effect).
#   upward bone (0, 0, 1): a > 0 tilts it backward, b > 0 towards the subject's left (+X).
#   sideways bone (+-1, 0, 0): c moves its end forward/back, b up/down, a spins it (no effect).
# The paper gives only the thigh ("knee") row: a in [-90, 90], b in [-180, 180], c in [-90, 90]
# for a template along its +Y axis, so its full-turn b spins the bone about itself. Our limb
# templates lie along Z, so that full turn is our c, and the two +-90 swings are our a and b.
# Left rows mirror right rows through the X = 0 plane: a keeps its range, b and c are negated
# (reflecting x -> -x maps Rx(a) to Rx(a), Ry(b) to Ry(-b), Rz(c) to Rz(-c)).
H36M_ROTATION_LIMITS = (
    # root -> right_hip: the pelvis is one rigid bone; a few degrees absorb pelvic tilt/rotation.
    ((-5., 5.), (-5., 5.), (-10., 10.)),
    # right_hip -> right_knee (thigh): the paper's row (hip flexion/extension and ab/adduction up
    # to 90 deg; the full twist is irrelevant for a bone along its own axis).
    ((-90., 90.), (-90., 90.), (-180., 180.)),
    # right_knee -> right_foot (shin): the knee is a hinge that bends backwards, so the shin swings
    # far back (foot behind the knee, kneeling/running) but only a little forward; +-20 deg
    # sideways.
    ((-90., 20.), (-20., 20.), (-180., 180.)),
    # root -> left_hip: mirror of root -> right_hip.
    ((-5., 5.), (-5., 5.), (-10., 10.)),
    # left_hip -> left_knee: mirror of the right thigh.
    ((-90., 90.), (-90., 90.), (-180., 180.)),
    # left_knee -> left_foot: mirror of the right shin.
    ((-90., 20.), (-20., 20.), (-180., 180.)),
    # root -> spine (lumbar): ~30 deg forward flexion (a < 0 for an upward bone), ~15 deg
    # extension, ~15 deg lateral bending, ~30 deg axial twist (lumbar spine ranges of motion).
    ((-30., 15.), (-15., 15.), (-30., 30.)),
    # spine -> thorax (thoracic spine): ranges of the same size as the lumbar segment.
    ((-30., 15.), (-15., 15.), (-30., 30.)),
    # thorax -> neck_base (lower cervical spine): +-30 deg flexion/extension, +-20 deg lateral,
    # +-30 deg rotation.
    ((-30., 30.), (-20., 20.), (-30., 30.)),
    # neck_base -> head (head on the neck): nodding +-45, tilting +-30, turning +-45 deg.
    ((-45., 45.), (-30., 30.), (-45., 45.)),
    # thorax -> left_shoulder (clavicle): ~20 deg elevation (b < 0 raises the left end), ~10 deg
    # depression, ~20 deg protraction (c > 0 moves it forward), ~15 deg retraction.
    ((-10., 10.), (-20., 10.), (-15., 20.)),
    # left_shoulder -> left_elbow (upper arm): the shoulder is the widest joint: flexion up to
    # 135 deg forward (a > 0), 45 deg extension; abduction up to 120 deg (b < 0 on the left),
    # 30 deg adduction across the body; humeral rotation +-90 deg (spins the bone about itself).
    ((-45., 135.), (-120., 30.), (-90., 90.)),
    # left_elbow -> left_wrist (forearm): the elbow is a hinge that flexes forward, so the forearm
    # swings up to 150 deg forward but only 20 deg back; sideways as far as the raised upper arm.
    ((-20., 150.), (-90., 45.), (-90., 90.)),
    # thorax -> right_shoulder: mirror of the left clavicle.
    ((-10., 10.), (-10., 20.), (-20., 15.)),
    # right_shoulder -> right_elbow: mirror of the left upper arm.
    ((-45., 135.), (-30., 120.), (-90., 90.)),
    # right_elbow -> right_wrist: mirror of the left forearm.
    ((-20., 150.), (-45., 90.), (-90., 90.)),
)

# (right bone, left bone) index pairs into H36M_BONES: the rows that mirror each other.
H36M_SYMMETRIC_BONES = ((0, 3), (1, 4), (2, 5), (13, 10), (14, 11), (15, 12))

# Plot colour of each bone (same order as H36M_BONES): left side blue, right side red, trunk black.
H36M_BONE_COLORS = tuple(
    'tab:blue' if H36M_JOINT_NAMES[child].startswith('left') else
    'tab:red' if H36M_JOINT_NAMES[child].startswith('right') else 'black'
    for _, child in H36M_BONES)
