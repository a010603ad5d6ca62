"""JDRMetric against detection rates worked out by hand."""
import numpy as np
import pytest
from mmengine.registry import DefaultScope

import liftedcl_mm  # noqa: F401  (registers JDRMetric in MMPose's METRICS)
from liftedcl_mm.evaluation import JDRMetric
from liftedcl_mm.evaluation.metrics.jdr_metric import QIU_HEAD_SIZE, joint_detection_rate

K = 17


def _sample(gt, offsets, visible=None):
    gt = np.asarray(gt, dtype=np.float64).reshape(1, K, 2)
    pred = gt.copy()
    for joint, off in offsets.items():
        pred[0, joint] += off
    vis = np.ones((1, K)) if visible is None else np.asarray(visible, dtype=float).reshape(1, K)
    return dict(pred_instances=dict(keypoints=pred),
                gt_instances=dict(keypoints=gt, keypoints_visible=vis))


def _gt(seed, head_dist):
    """Ground truth in a 1000 px frame with joints 9 and 10 ``head_dist`` px apart."""
    gt = np.random.default_rng(seed).uniform(300, 700, (K, 2))
    gt[10] = gt[9] + [0.0, -head_dist]
    return gt


# A: distances 12.8 (j0, on the threshold: detected, <= as Qiu et al.), 12.73 (j1),
#    12.81 (j2), 13 (j3); everything else exact.       head joints 30 px apart
# B: 20 (j0), j1 invisible, 5 (j2), 0 (j3).            head joints 8 px apart
A = dict(offsets={0: (12.8, 0.0), 1: (9.0, 9.0), 2: (10.0, 8.0), 3: (0.0, 13.0)}, head=30.0)
B = dict(offsets={0: (20.0, 0.0), 2: (3.0, 4.0)}, head=8.0)


def _samples():
    vis_b = np.ones(K)
    vis_b[1] = 0
    return [_sample(_gt(0, A['head']), A['offsets']),
            _sample(_gt(1, B['head']), B['offsets'], vis_b)]


def _run(metric, samples, names=True):
    if names:
        metric.dataset_meta = dict(keypoint_id2name={i: f'j{i}' for i in range(K)})
    metric.process([{}] * len(samples), samples)
    return metric.evaluate(len(samples))


def test_fixed_head_size_as_qiu_et_al():
    assert QIU_HEAD_SIZE == pytest.approx(25.6)  # 256 / 10: threshold 12.8 px
    out = _run(JDRMetric(), _samples())
    # j0: A yes, B no; j1: A yes (B not counted); j2: A no, B yes; j3: A no, B yes; others: yes
    expected = {0: 0.5, 1: 1.0, 2: 0.5, 3: 0.5}
    for k in range(K):
        assert out[f'JDR/j{k}'] == pytest.approx(expected.get(k, 1.0)), k
    assert out['JDR/mean'] == pytest.approx(15.5 / 17)
    # 33 joints counted (j1 of B is not), 15 + 15 detected
    assert out['JDR/all'] == pytest.approx(30 / 33)


def test_head_size_from_ground_truth_joints():
    invisible_head = np.ones(K)
    invisible_head[10] = 0  # no head size: instance C is left out entirely
    samples = _samples() + [_sample(_gt(2, 20.0), {0: (100.0, 0.0)}, invisible_head)]
    out = _run(JDRMetric(head_size='joints', head_joints=(9, 10), prefix='JDR-h'), samples)
    # A: threshold 15 px -> j0..j3 all detected; B: threshold 4 px -> j0 and j2 missed
    expected = {0: 0.5, 1: 1.0, 2: 0.5, 3: 1.0}
    for k in range(K):
        assert out[f'JDR-h/j{k}'] == pytest.approx(expected.get(k, 1.0)), k
    assert out['JDR-h/mean'] == pytest.approx(16 / 17)
    assert out['JDR-h/all'] == pytest.approx(31 / 33)


def test_thr_scales_the_radius_and_functional_form():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[3.0, 4.0], [6.0, 8.0]]])  # 5 px and 10 px off
    mask = np.ones((1, 2), dtype=bool)
    per_joint, mean = joint_detection_rate(pred, gt, mask, np.array([10.0]), thr=0.5)
    assert per_joint.tolist() == [1.0, 0.0] and mean == 0.5
    per_joint, mean = joint_detection_rate(pred, gt, mask, np.array([10.0]), thr=1.0)
    assert per_joint.tolist() == [1.0, 1.0] and mean == 1.0
    # a joint that never counts is NaN and left out of the mean
    per_joint, mean = joint_detection_rate(pred, gt, np.array([[True, False]]), np.array([10.]))
    assert per_joint[0] == 1.0 and np.isnan(per_joint[1]) and mean == 1.0


def test_built_from_mmpose_registry_and_unnamed_joints():
    from mmpose.registry import METRICS
    with DefaultScope.overwrite_default_scope('mmpose'):
        metric = METRICS.build(dict(type='JDRMetric', head_size=25.6))
    out = _run(metric, _samples(), names=False)
    assert out['JDR/joint_0'] == pytest.approx(0.5)
    assert all(np.isfinite(v) for v in out.values())


@pytest.mark.parametrize('kwargs', [dict(thr=0), dict(head_size=-1.0), dict(head_size='bbox'),
                                    dict(head_joints=(9, 9)), dict(head_joints=(9, ))])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='JDRMetric'):
        JDRMetric(**kwargs)
