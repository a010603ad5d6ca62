"""Statistics of a 3D skeleton prior, measured from joint positions only.

The numbers here judge whether a set of skeletons (sampled, loaded from a file, lifted) looks like
people: the right way round (not mirror images), knees bending backwards, natural limb angles.
They read nothing but the joints (never a sampler's drawn angles), so they can check any prior,
including the sampler that they are meant to test. Every direction is derived from the skeleton
itself; only the trunk tilt needs to know which world axis is up.

Definitions, per skeleton (joint names from MMPose's H36M order):

* trunk axis ``t``: unit vector root -> thorax (the body's own "up"); trunk-down is ``-t``.
* subject's right ``r``: unit vector left_hip -> right_hip.
* front: ``t x r`` (right-handed axes: forward = up x right, right = forward x up).
* handedness: the nose-level joint 9 (MMPose: ``neck_base``, H36M's "Neck/Nose") is in front
  of the thorax, ``(j9 - thorax) . (t x r) > 0`` -- equivalently, with the front ``f`` taken
  from that joint, the right hip lies on the side ``f x t`` and the left hip on the other --
  and the shoulders agree: ``(right_shoulder - left_shoulder) . ((j9 - thorax) x t) > 0``. A
  mirror image (x -> -x) fails: reflections reverse cross products.
* knee flexion: the angle between the thigh (hip -> knee) and the shin (knee -> foot); 0 for a
  straight leg.
* knee bend axis: ``thigh x shin``. A knee that folds the shin backwards has it pointing to the
  subject's LEFT (standing thigh ``(0, 0, -1)``, shin back and down ``(0, -s, -c)``: the cross
  product is ``(-s, 0, 0)``, i.e. along ``-r``). Hip flexion turns the thigh about that axis
  and ab- / adduction or a hip twist below 90 deg keep it on the left, so a correct knee has
  ``(thigh x shin) . r < 0`` in any natural pose; a knee bent forward has it ``> 0``.
* thigh / upper-arm angle: between the bone (hip -> knee, shoulder -> elbow) and trunk-down
  ``-t``; 0 when it hangs along the trunk.
* trunk tilt: the angle between ``t`` and the world's up axis.
* plausible (one skeleton, :func:`plausible`): every bone's share of the total bone length lies
  in the band a prior allows (the prior's min / max per bone, widened by a tolerance), and no
  knee bent by more than a threshold has its bend axis to the subject's right.
"""
from typing import Dict, List, Sequence

import numpy as np

from .h36m import H36M_BONES, H36M_JOINT_NAMES, H36M_NUM_JOINTS

# World axis of each ``up_axis`` spelling.
UP_AXES = {
    '+x': (1.0, 0.0, 0.0), '-x': (-1.0, 0.0, 0.0),
    '+y': (0.0, 1.0, 0.0), '-y': (0.0, -1.0, 0.0),
    '+z': (0.0, 0.0, 1.0), '-z': (0.0, 0.0, -1.0),
}

_J = {name: i for i, name in enumerate(H36M_JOINT_NAMES)}
# (hip, knee, foot) and (shoulder, elbow) of the right and the left side.
_LEGS = ((_J['right_hip'], _J['right_knee'], _J['right_foot']),
         (_J['left_hip'], _J['left_knee'], _J['left_foot']))
_ARMS = ((_J['right_shoulder'], _J['right_elbow']), (_J['left_shoulder'], _J['left_elbow']))

# The targets a prior of natural human poses meets: (key, label, unit, op, target, rationale).
# ``op`` is '>=', '<=' or 'in' (target = (lo, hi)); shares are fractions, angles degrees.
PRIOR_STAT_TARGETS = (
    ('handedness', 'nose in front, left hip & shoulder on the left', '%', '>=', 0.99,
     'a right-handed body: anything else is a mirror image (left_* joints on the right)'),
    ('knee_wrong_way', 'bent knees (>10 deg) with bend axis to the right', '%', '<=', 0.05,
     'the knee is a hinge folding the shin backwards; its axis points to the left'),
    ('knee_flexion_median', 'knee flexion, median', 'deg', 'in', (10.0, 60.0),
     'natural stances keep the knees slightly bent (authors\' prior: 29 deg)'),
    ('knee_flexion_std', 'knee flexion, std', 'deg', '>=', 8.0,
     'a prior of one knee angle teaches nothing: walking, sitting, kneeling differ'),
    ('trunk_tilt_median', 'trunk tilt from vertical, median', 'deg', '<=', 25.0,
     'people mostly stand or sit upright (authors\' prior: 15 deg)'),
    ('thigh_angle_median', 'thigh angle from trunk-down, median', 'deg', 'in', (8.0, 45.0),
     'standing and walking dominate (authors\' prior: 19 deg)'),
    ('thigh_angle_p95', 'thigh angle from trunk-down, p95', 'deg', '>=', 45.0,
     'sitting, running and kicking must stay in the prior'),
    ('upper_arm_angle_median', 'upper-arm angle from trunk-down, median', 'deg', 'in',
     (10.0, 60.0), 'arms mostly hang near the body (authors\' prior: 34 deg)'),
)


def up_vector(up_axis: str) -> np.ndarray:
    """The unit world vector of ``up_axis`` (one of ``UP_AXES``: '+z', '-y', ...)."""
    key = str(up_axis).strip().lower()
    if key not in UP_AXES:
        raise ValueError(f'up_axis must be one of {sorted(UP_AXES)}, got {up_axis!r}')
    return np.asarray(UP_AXES[key], dtype=np.float64)


def _unit(vec: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    return vec / np.where(norm > 0, norm, 1.0)


def _angle_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between vectors (..., 3) in degrees; atan2 form, accurate near 0 and 180."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1),
                                 np.einsum('...i,...i->...', u, v)))


def skeleton_measures(joints: np.ndarray, up_axis: str = '+z') -> Dict[str, np.ndarray]:
    """Per-skeleton measures of the module docstring.

    Args:
        joints (np.ndarray): ``(N, 17, 3)`` joints in MMPose's H36M order (any scale, any
            origin).
        up_axis (str): The world's up axis, e.g. ``'+z'`` (ours) or ``'-y'``.

    Returns:
        dict: ``handedness`` (N,) bool; ``knee_flexion`` (N, 2) degrees and ``knee_axis_right``
        (N, 2) bool (bend axis . subject's right > 0), both legs (right, left);
        ``trunk_tilt`` (N,) degrees; ``thigh_angle`` (N, 2) and ``upper_arm_angle`` (N, 2)
        degrees from trunk-down (right, left).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (H36M_NUM_JOINTS, 3):
        raise ValueError(f'joints must have shape (N, {H36M_NUM_JOINTS}, 3), '
                         f'got {joints.shape}')
    up = up_vector(up_axis)
    trunk = _unit(joints[:, _J['thorax']] - joints[:, _J['root']])
    right = joints[:, _J['right_hip']] - joints[:, _J['left_hip']]
    front = np.cross(trunk, right)  # forward = up x right
    nose = joints[:, _J['neck_base']] - joints[:, _J['thorax']]
    # Right from the nose-level joint: f x t, where only f's part across t counts (t x t = 0).
    right_from_nose = np.cross(nose, trunk)
    shoulders = joints[:, _J['right_shoulder']] - joints[:, _J['left_shoulder']]
    handedness = ((np.einsum('ni,ni->n', nose, front) > 0)
                  & (np.einsum('ni,ni->n', shoulders, right_from_nose) > 0))

    thigh = np.stack([joints[:, k] - joints[:, h] for h, k, _ in _LEGS], 1)
    shin = np.stack([joints[:, f] - joints[:, k] for _, k, f in _LEGS], 1)
    knee_axis = np.cross(thigh, shin)
    upper_arm = np.stack([joints[:, e] - joints[:, s] for s, e in _ARMS], 1)
    down = -trunk[:, None]
    return dict(
        handedness=handedness,
        knee_flexion=_angle_deg(thigh, shin),
        knee_axis_right=np.einsum('nki,ni->nk', knee_axis, right) > 0,
        trunk_tilt=_angle_deg(trunk, up),
        thigh_angle=_angle_deg(thigh, down),
        upper_arm_angle=_angle_deg(upper_arm, down))


def prior_statistics(joints: np.ndarray,
                     up_axis: str = '+z',
                     bend_threshold: float = 10.0) -> Dict[str, float]:
    """Summary statistics of a prior (the keys of :data:`PRIOR_STAT_TARGETS`).

    Left and right limbs are pooled. Shares are fractions in [0, 1]; angles are degrees.

    Args:
        joints (np.ndarray): ``(N, 17, 3)`` joints in MMPose's H36M order.
        up_axis (str): The world's up axis of ``joints``. Defaults to ``'+z'`` (ours).
        bend_threshold (float): Knees flexed more than this (degrees) count as bent.

    Returns:
        dict: the statistics, plus ``num_skeletons`` and ``num_bent_knees``;
        ``knee_wrong_way`` is NaN when no knee is bent.
    """
    m = skeleton_measures(joints, up_axis)
    flexion = m['knee_flexion'].ravel()
    bent = flexion > bend_threshold
    wrong = m['knee_axis_right'].ravel() & bent
    thigh = m['thigh_angle'].ravel()
    return dict(
        num_skeletons=int(len(m['handedness'])),
        num_bent_knees=int(bent.sum()),
        handedness=float(m['handedness'].mean()),
        knee_wrong_way=float(wrong.sum() / bent.sum()) if bent.any() else float('nan'),
        knee_flexion_median=float(np.median(flexion)),
        knee_flexion_std=float(np.std(flexion)),
        trunk_tilt_median=float(np.median(m['trunk_tilt'])),
        thigh_angle_median=float(np.median(thigh)),
        thigh_angle_p95=float(np.percentile(thigh, 95)),
        upper_arm_angle_median=float(np.median(m['upper_arm_angle'].ravel())))


def check_prior_statistics(stats: Dict[str, float],
                           targets: Sequence = PRIOR_STAT_TARGETS) -> List[dict]:
    """Compare statistics with their targets.

    Args:
        stats (dict): Output of :func:`prior_statistics`.
        targets: Rows ``(key, label, unit, op, target, rationale)``.

    Returns:
        list[dict]: One dict per target: ``key``, ``label``, ``unit``, ``value``, ``target``
        (text), ``passed`` (bool; a NaN value fails).
    """
    rows = []
    for key, label, unit, op, target, _ in targets:
        value = float(stats[key])
        if op == 'in':
            lo, hi = target
            passed = lo <= value <= hi
            text = f'{_fmt(lo, unit)}-{_fmt(hi, unit)}'
        elif op == '>=':
            passed, text = value >= target, f'>= {_fmt(target, unit)}'
        elif op == '<=':
            passed, text = value <= target, f'<= {_fmt(target, unit)}'
        else:
            raise ValueError(f'unknown target operator {op!r} of {key!r}')
        rows.append(dict(key=key, label=label, unit=unit, value=value, target=text,
                         passed=bool(passed and np.isfinite(value))))
    return rows


def _fmt(value: float, unit: str) -> str:
    if unit == '%':
        return f'{100 * value:.1f}%'
    return f'{value:.1f} deg'


def format_statistics(rows: List[dict], title: str = '') -> str:
    """A plain-text table of :func:`check_prior_statistics` rows (one line per statistic)."""
    width = max(len(r['label']) for r in rows)
    lines = [title] if title else []
    lines.append(f'{"statistic":<{width}}  {"value":>10}  {"target":<17}  result')
    for r in rows:
        lines.append(f'{r["label"]:<{width}}  {_fmt(r["value"], r["unit"]):>10}  '
                     f'{r["target"]:<17}  {"PASS" if r["passed"] else "FAIL"}')
    return '\n'.join(lines)


# --- Plausibility of single skeletons ----------------------------------------------------------
def bone_length_ratios(joints: np.ndarray) -> np.ndarray:
    """Each bone's length divided by the skeleton's total bone length (scale-free proportions).

    Args:
        joints (np.ndarray): ``(N, 17, 3)`` joints in MMPose's H36M order (any scale).

    Returns:
        np.ndarray: ``(N, 16)`` ratios in ``H36M_BONES`` order; NaN for a skeleton whose bones
        all have length 0.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (H36M_NUM_JOINTS, 3):
        raise ValueError(f'joints must have shape (N, {H36M_NUM_JOINTS}, 3), '
                         f'got {joints.shape}')
    parents, children = (list(side) for side in zip(*H36M_BONES))
    lengths = np.linalg.norm(joints[:, children] - joints[:, parents], axis=-1)
    total = lengths.sum(axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        return lengths / np.where(total > 0, total, np.nan)


def bone_ratio_band(prior: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """The band of bone-length ratios a prior allows: per bone ``[min (1 - tol), max (1 + tol)]``.

    Args:
        prior (np.ndarray): ``(P, 17, 3)`` prior skeletons.
        tolerance (float): Relative widening of the prior's range on both sides.

    Returns:
        np.ndarray: ``(2, 16)`` lower and upper bounds.
    """
    if not 0.0 <= float(tolerance) < 1.0:
        raise ValueError(f'tolerance must be in [0, 1), got {tolerance}')
    ratios = bone_length_ratios(prior)
    ratios = ratios[np.isfinite(ratios).all(axis=1)]
    if len(ratios) == 0:
        raise ValueError('the prior has no skeleton with finite, non-zero bones')
    return np.stack([ratios.min(0) * (1.0 - tolerance), ratios.max(0) * (1.0 + tolerance)])


def plausible(joints: np.ndarray,
              prior: np.ndarray,
              tolerance: float = 0.1,
              bend_threshold: float = 10.0) -> np.ndarray:
    """Which skeletons pass the plausibility test of lifted poses.

    A skeleton passes when (1) every bone-length ratio (:func:`bone_length_ratios`) lies in
    the prior's band (:func:`bone_ratio_band`) and (2) no knee bent by more than
    ``bend_threshold`` degrees bends the wrong way (its bend axis points to the subject's right,
    see the module docstring; a mirror image fails this too). Non-finite skeletons fail.

    Args:
        joints (np.ndarray): ``(N, 17, 3)`` skeletons to test (any scale, any origin).
        prior (np.ndarray): ``(P, 17, 3)`` prior skeletons, or a ``(2, 16)`` band from
            :func:`bone_ratio_band` (computed once when testing many batches).
        tolerance (float): Widening of the band when ``prior`` holds skeletons.
        bend_threshold (float): Knees flexed more than this (degrees) count as bent.

    Returns:
        np.ndarray: ``(N,)`` bool.
    """
    parts = _plausibility_parts(joints, prior, tolerance, bend_threshold)
    return parts['passed']


def _plausibility_parts(joints: np.ndarray, prior: np.ndarray, tolerance: float,
                        bend_threshold: float) -> Dict[str, np.ndarray]:
    """The per-skeleton tests behind :func:`plausible` (``(N,)`` bool each) and their
    conjunction ``passed``, ``clean`` joints (non-finite skeletons zeroed) and their
    ``measures``."""
    joints = np.asarray(joints, dtype=np.float64)
    prior = np.asarray(prior, dtype=np.float64)
    band = prior if prior.shape == (2, len(H36M_BONES)) else bone_ratio_band(prior, tolerance)
    finite = np.isfinite(joints).all(axis=(1, 2))
    joints = np.where(finite[:, None, None], joints, 0.0)  # keep NaN out of the measures
    ratios = bone_length_ratios(joints)
    with np.errstate(invalid='ignore'):
        in_band = ((ratios >= band[0]) & (ratios <= band[1])).all(axis=1)
        m = skeleton_measures(joints)
        wrong_knee = (m['knee_axis_right'] & (m['knee_flexion'] > bend_threshold)).any(axis=1)
    return dict(finite=finite, bones_in_band=in_band, knees_ok=~wrong_knee,
                passed=finite & in_band & ~wrong_knee, clean=joints, measures=m)


def plausibility_breakdown(joints: np.ndarray, prior: np.ndarray, tolerance: float = 0.1,
                           bend_threshold: float = 10.0) -> Dict[str, float]:
    """Why lifted skeletons fail :func:`plausible`: the share passing each part of the test.

    The KCS matrix ``B^T B`` holds only inner products of bones, so it is blind to mirror
    images, and a mirror image fails the knee test (its bend axes point to the subject's
    right). ``plausible_up_to_mirror`` therefore separates "a mirrored but otherwise human
    skeleton" from a broken one.

    Args:
        joints (np.ndarray): ``(N, 17, 3)`` skeletons to test.
        prior (np.ndarray): ``(P, 17, 3)`` prior skeletons (the band's source).
        tolerance (float): Widening of the prior's bone-ratio band.
        bend_threshold (float): Knees flexed more than this (degrees) count as bent.

    Returns:
        dict: shares in [0, 1]: ``plausible``, ``bones_in_band`` (every bone ratio in the band),
        ``knees_ok`` (no knee bent the wrong way), ``handedness`` (not a mirror image),
        ``plausible_up_to_mirror``; and ``spread``, the skeletons' mean per-joint standard
        deviation over that of ``prior`` (after both are normalised like the prior), which is
        ~0 when a generator collapsed to one pose.
    """
    prior = np.asarray(prior, dtype=np.float64)
    band = bone_ratio_band(prior, tolerance)
    parts = _plausibility_parts(joints, band, tolerance, bend_threshold)
    mirrored = _plausibility_parts(parts['clean'] * [-1.0, 1.0, 1.0], band, tolerance,
                                   bend_threshold)
    finite, clean = parts['finite'], parts['clean']
    # the mirrored copy is built from the zeroed joints: only the original's test is finite
    passed, passed_mirrored = parts['passed'], finite & mirrored['passed']

    def spread(x):
        x = x - x[:, :1]
        x = x / np.linalg.norm(x.reshape(len(x), -1), axis=1).clip(min=1e-12)[:, None, None]
        return x.std(axis=0).mean()

    return dict(plausible=float(passed.mean()),
                bones_in_band=float((finite & parts['bones_in_band']).mean()),
                knees_ok=float((finite & parts['knees_ok']).mean()),
                handedness=float((finite & parts['measures']['handedness']).mean()),
                plausible_up_to_mirror=float((passed | passed_mirrored).mean()),
                spread=float(spread(clean[finite]) / spread(prior)) if finite.any() else 0.0)
