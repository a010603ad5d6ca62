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


# --- The body frame ----------------------------------------------------------------------------
# Every 3D skeleton in this package (template, prior, lifted joints, plots) uses ONE right-handed
# frame: the subject faces +Y, +Z is up and the subject's right is +X (left is -X), because in a
# right-handed frame right = forward x up (Y x Z = X) and forward = up x right. Seen from the front
# (a camera at +Y looking back along -Y, image up = +Z) the subject's left appears on the
# viewer's right, as in any photo of a person facing the camera.
H36M_FORWARD_AXIS = (0.0, 1.0, 0.0)
H36M_UP_AXIS = (0.0, 0.0, 1.0)
H36M_RIGHT_AXIS = (1.0, 0.0, 0.0)

# Index of the bone that ends at each bone's parent joint (-1 when the parent is the root): the
# bone whose frame a bone's rotation is expressed in (see the prior below).
H36M_BONE_PARENTS = tuple(-1 if p == 0 else H36M_BONES.index((H36M_PARENTS[p], p))
                          for p, _ in H36M_BONES)

# --- Template skeleton -------------------------------------------------------------------------
# Millimetres, in the body frame above. Lengths are the typical H36M bone lengths (Human3.6M
# subject S1, as used by common 3D-lifting baselines); the template stands upright with the arms
# hanging down, so every limb bone points along -Z.
_HIP, _THIGH, _SHIN = 132.95, 442.89, 454.21
_SPINE, _THORAX, _NECK, _HEAD = 233.38, 257.08, 121.13, 115.00
_CLAVICLE, _UPPER_ARM, _FOREARM = 151.03, 278.88, 251.73
# H36M's joint 9 (MMPose: 'neck_base') sits at nose level, in front of the thorax: the authors'
# released prior (H36M poses) has the thorax -> joint-9 bone a median 42 deg forward of the trunk
# axis. The template tilts it 40 deg forward.
_NECK_TILT = np.deg2rad(40.0)
_NECK_DIR = np.array([0.0, np.sin(_NECK_TILT), np.cos(_NECK_TILT)])

# One row per bone of H36M_BONES, in the same order.
H36M_TEMPLATE_BONES = np.array([
    [_HIP, 0.0, 0.0],  # root -> right_hip (subject's right: +X)
    [0.0, 0.0, -_THIGH],  # right_hip -> right_knee
    [0.0, 0.0, -_SHIN],  # right_knee -> right_foot
    [-_HIP, 0.0, 0.0],  # root -> left_hip (subject's left: -X)
    [0.0, 0.0, -_THIGH],  # left_hip -> left_knee
    [0.0, 0.0, -_SHIN],  # left_knee -> left_foot
    [0.0, 0.0, _SPINE],  # root -> spine
    [0.0, 0.0, _THORAX],  # spine -> thorax
    list(_NECK * _NECK_DIR),  # thorax -> neck_base (nose level, forward)
    [0.0, 0.0, _HEAD],  # neck_base -> head
    [-_CLAVICLE, 0.0, 0.0],  # thorax -> left_shoulder
    [0.0, 0.0, -_UPPER_ARM],  # left_shoulder -> left_elbow
    [0.0, 0.0, -_FOREARM],  # left_elbow -> left_wrist
    [_CLAVICLE, 0.0, 0.0],  # thorax -> right_shoulder
    [0.0, 0.0, -_UPPER_ARM],  # right_shoulder -> right_elbow
    [0.0, 0.0, -_FOREARM],  # right_elbow -> right_wrist
], dtype=np.float64)
H36M_TEMPLATE_BONES.setflags(write=False)

# --- Rotations of the prior sampler (paper App. B) ---------------------------------------------
# Bone k of a sampled skeleton is G_k @ (alpha_k * template_k), with G_k = G_parent @ R_k: R_k is
# the bone's rotation RELATIVE TO ITS PARENT BONE's frame (H36M_BONE_PARENTS; the root's frame is
# the body frame) and R = Rx(a) @ Ry(b) @ Rz(c): c about Z first, then b about Y, then a about X
# (scipy's intrinsic 'XYZ'). At rest (all angles 0) the skeleton is the template, so each frame's
# axes start as the body axes: for a limb, local X is its medio-lateral axis and local Y its
# forward axis. A hinge is therefore a rotation about the parent's local X, whatever the parent's
# pose. What the angles do to a template direction (in the parent's frame):
#   downward bone (0, 0, -1) -> (-sin b, cos b sin a, -cos b cos a): a > 0 swings it forward
#     (flexion of hip / shoulder, elbow flexion), a < 0 backward (knee flexion); b > 0 swings it
#     towards the subject's left (-X), b < 0 towards the right (+X); c spins it about itself.
#   upward bone (0, 0, 1) -> (sin b, -cos b sin a, cos b cos a): a < 0 bends it forward, a > 0
#     backward; b > 0 tilts it to the subject's right (+X); c spins it (axial rotation).
#   sideways bone (1, 0, 0) (right hip / shoulder): c > 0 moves its end forward, b > 0 down;
#     a spins it about itself.
# A spin (c of a limb, a of a sideways bone) does not move the bone itself but turns its frame,
# hence every child: the thigh's spin (hip internal/external rotation) turns the knee's hinge
# axis, the upper arm's (humeral rotation) the elbow's.
# The paper gives only the thigh ("knee") row: a in [-90, 90], b in [-180, 180], c in [-90, 90]
# for a template along its +Y axis, so its full-turn b spins the bone about itself. Our limb
# templates lie along Z, so that full turn is our c, and the two +-90 swings are our a
# (flexion / extension) and b (ab- / adduction).
# Left rows mirror right rows through the X = 0 plane: a keeps its range, b and c are negated
# (reflecting x -> -x maps Rx(a) to Rx(a), Ry(b) to Ry(-b), Rz(c) to Rz(-c)); so are the modes
# of b and c, whose two spreads swap sides.
#
# Each angle has LIMITS (lo, hi), the support of the sampler, and a DISTRIBUTION inside them: a
# split normal truncated to [lo, hi] (mode; std_below / std_above: the spread on each side of the
# mode; both inf: uniform over [lo, hi], the paper's choice). The limits are the anatomical ranges
# of motion (the paper's on the thigh). The distributions make natural poses (standing, walking:
# small hip and knee angles) dominate while the tails still reach sitting, running and kicking;
# their two sides follow joints that move much further one way (the hip flexes ~120 deg but
# extends ~20). Uniform sampling of the same limits (distributions='uniform') makes extreme poses
# as likely as natural ones (median thigh 69 deg from trunk-down, the authors' released prior:
# 19 deg), and the paper's full thigh twist then turns half of the knees to bend forward in the
# body frame (tools/misc/sample_skeletons.py --uniform --stats).
# Row format: per angle a, b, c: (lo, hi, mode, std_below, std_above), degrees.
_RIGHT_AND_CENTRE_ROWS = {
    # root -> right_hip (half pelvis, rigid with the trunk base): a spins it = pelvic tilt
    # (+-10 deg), b > 0 drops the right hip = pelvic obliquity (+-5), c > 0 brings it forward =
    # pelvic rotation (+-10). Small: in the body frame the pelvis is the reference.
    'right_hip': ((-10., 10., 0., 4., 4.), (-5., 5., 0., 2., 2.), (-10., 10., 0., 4., 4.)),
    # right_hip -> right_knee (thigh): the paper's limits. a: hip flexion (a > 0) / extension
    # (+-90, the paper's box; the hip flexes ~120 and extends ~20-30 deg): mode 0 (standing),
    # extension side std 8, flexion side std 30 (walking, running, kicking, sitting at 90).
    # b: ab- / adduction (+-90; the hip abducts ~45 deg, adducts ~30): b < 0 abducts the right
    # leg, std 12 on that side, 6 across the body. c: the paper's full turn about the bone = hip
    # internal / external rotation, which orients the knee hinge; the real range is ~ +-45 deg,
    # std 15 keeps >99.7% of the draws within it.
    'right_knee': ((-90., 90., 0., 8., 30.), (-90., 90., -3., 12., 6.),
                   (-180., 180., 0., 15., 15.)),
    # right_knee -> right_foot (shin): the knee is a HINGE about the thigh's medio-lateral (local
    # X) axis that folds the shin BACKWARDS only: a in [-150, 0] (flexion 0-150 deg, heel to
    # buttock; no hyperextension). Natural poses keep the knees a little bent (mode -10), the
    # flexion side (std 40) reaches sitting and kneeling. b: +-5 deg varus / valgus laxity.
    # c: tibial axial rotation (~ +-30 deg); the foot is a leaf, so it spins nothing.
    'right_foot': ((-150., 0., -10., 40., 10.), (-5., 5., 0., 2., 2.),
                   (-30., 30., 0., 10., 10.)),
    # root -> spine (lumbar spine): a < 0 flexes forward (~40 deg), a > 0 extends (~20), so
    # flexion spreads further (std 8 vs 4); b lateral bending (+-20); c axial rotation (lumbar:
    # ~ +-10). Upright on average.
    'spine': ((-40., 20., -2., 8., 4.), (-20., 20., 0., 5., 5.), (-10., 10., 0., 3., 3.)),
    # spine -> thorax (thoracic spine): flexion ~40, extension ~15, lateral bending +-15, axial
    # rotation +-35 (most of the trunk's twist happens here).
    'thorax': ((-40., 15., -2., 8., 4.), (-15., 15., 0., 4., 4.), (-35., 35., 0., 10., 10.)),
    # thorax -> neck_base (lower cervical spine): flexion / extension +-30, lateral bending +-20,
    # rotation +-30 (turns the head with it).
    'neck_base': ((-30., 30., 0., 8., 8.), (-20., 20., 0., 5., 5.), (-30., 30., 0., 10., 10.)),
    # neck_base -> head (upper cervical spine and skull): nodding +-45, tilting +-30, turning
    # +-45 (the head top is a leaf: the turn spins nothing).
    'head': ((-45., 45., 0., 12., 12.), (-30., 30., 0., 6., 6.), (-45., 45., 0., 15., 15.)),
    # thorax -> right_shoulder (clavicle): a spins it (+-10, clavicular rotation); b < 0 raises
    # the shoulder (elevation ~20 deg, std 5), b > 0 lowers it (depression ~10, std 3); c > 0
    # moves it forward (protraction ~20), c < 0 back (retraction ~15).
    'right_shoulder': ((-10., 10., 0., 3., 3.), (-20., 10., 0., 5., 3.),
                       (-15., 20., 0., 5., 5.)),
    # right_shoulder -> right_elbow (upper arm): the shoulder is the widest joint. a: flexion up
    # to 180 deg (arm overhead; std 35), extension 60 (std 12); b < 0 abducts the right arm (up to
    # 120, beyond is reached through flexion; std 20), b > 0 adducts it across the body (30; std
    # 6); c: humeral rotation, c > 0 internal (70), c < 0 external (90), which orients the elbow
    # hinge. Natural: arms hang a little forward and away from the body, turned slightly in.
    'right_elbow': ((-60., 180., 5., 12., 35.), (-120., 30., -8., 20., 6.),
                    (-90., 70., 10., 20., 20.)),
    # right_elbow -> right_wrist (forearm): the elbow is a HINGE about the upper arm's local X
    # axis that folds the forearm FORWARD / up only: a in [0, 150] (flexion 0-150, no
    # hyperextension); natural poses carry it a little bent (mode 15), the flexion side (std 45)
    # reaches hands on hips and at the face. b: +-5 laxity around the carrying angle.
    # c: pronation / supination (+-90); the wrist is a leaf, it spins nothing.
    'right_wrist': ((0., 150., 15., 10., 45.), (-5., 5., 0., 2., 2.), (-90., 90., 0., 30., 30.)),
}


def _mirror_row(row):
    """The left row of a right row: a kept; b and c limits and modes negated, sides swapped."""

    def flip(lo, hi, mode, std_below, std_above):
        return (-hi, -lo, 0.0 - mode, std_above, std_below)

    a, b, c = row
    return (a, flip(*b), flip(*c))


def _build_rows():
    rows = []
    for _, child in H36M_BONES:
        name = H36M_JOINT_NAMES[child]
        if name.startswith('left_'):
            rows.append(_mirror_row(_RIGHT_AND_CENTRE_ROWS['right_' + name[len('left_'):]]))
        else:
            rows.append(_RIGHT_AND_CENTRE_ROWS[name])
    return np.asarray(rows, dtype=np.float64)  # (b, 3, 5)


_ROWS = _build_rows()
# Per-bone Euler-angle limits in degrees, ((a_lo, a_hi), (b_lo, b_hi), (c_lo, c_hi)), same order
# as H36M_BONES: the support of the prior sampler (rationale in _RIGHT_AND_CENTRE_ROWS).
H36M_ROTATION_LIMITS = tuple(tuple(tuple(float(v) for v in ax[:2]) for ax in row)
                             for row in _ROWS)
# Per-bone (mode, std_below, std_above) in degrees of the truncated split normal each angle is
# drawn from (stds inf: uniform over the limits).
H36M_ROTATION_DISTRIBUTIONS = tuple(tuple(tuple(float(v) for v in ax[2:]) for ax in row)
                                    for row in _ROWS)

# (right bone, left bone) index pairs into H36M_BONES: the rows that mirror each other.
H36M_SYMMETRIC_BONES = ((0, 3), (1, 4), (2, 5), (13, 10), (14, 11), (15, 12))

# Plot colour of each bone (same order as H36M_BONES): left side blue, right side red, trunk black.
H36M_BONE_COLORS = tuple(
    'tab:blue' if H36M_JOINT_NAMES[child].startswith('left') else
    'tab:red' if H36M_JOINT_NAMES[child].startswith('right') else 'black'
    for _, child in H36M_BONES)
