"""Joint Detection Rate (JDR), the Human3.6M 2D pose metric of paper Table 3."""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmpose.registry import METRICS as MMPOSE_METRICS

from liftedcl_mm.registry import METRICS

# Qiu et al. 2019 (whose evaluation the paper follows) fix the head size at a tenth of the
# network input width: 256 / 10 px, in the pixels of the H36M frame the joints are annotated in.
QIU_HEAD_SIZE = 256 / 10.0


def joint_detection_rate(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray,
                         head_size: np.ndarray, thr: float = 0.5) -> Tuple[np.ndarray, float]:
    """Per-joint and mean JDR.

    A joint is detected when ``||pred - gt|| <= thr * head_size`` (``<=`` as in Qiu et al.).

    Args:
        pred (np.ndarray): (N, K, 2) predicted joints, pixels.
        gt (np.ndarray): (N, K, 2) ground-truth joints, same frame.
        mask (np.ndarray): (N, K) bool, joints that count (visible, with a valid head size).
        head_size (np.ndarray): (N,) head size of each instance, pixels.
        thr (float): Fraction of the head size. Defaults to 0.5.

    Returns:
        tuple: ``(per_joint, mean)``: (K,) detection rates in [0, 1] (NaN for a joint that never
        counts) and their mean over the joints that count (Qiu et al.'s summary number).
    """
    dist = np.linalg.norm(pred - gt, axis=-1)
    detected = (dist <= thr * head_size[:, None]) & mask
    counted = mask.sum(axis=0)
    per_joint = np.full(counted.shape, np.nan)
    has = counted > 0
    per_joint[has] = detected.sum(axis=0)[has] / counted[has]
    mean = float(np.mean(per_joint[has])) if has.any() else float('nan')
    return per_joint, mean


@METRICS.register_module()
@MMPOSE_METRICS.register_module()
class JDRMetric(BaseMetric):
    """Joint Detection Rate: the share of joints predicted within ``thr`` x head size of the truth.

    The paper (App. D) counts a joint as detected "if the distance between it and the
    groundtruth location is smaller than a half of the head size", following Qiu et al. 2019
    ("Cross View Fusion for 3D Human Pose Estimation"), whose evaluation code
    (``MultiViewH36M.evaluate``) fixes the head size at the network input width / 10
    (25.6 px for 256x256 inputs), in the pixels of the H36M frame, with ``distance <= 0.5 *
    head size``: the definition behind the paper's Table 3. MMPose predicts top-down keypoints
    in the original frame, so the default reproduces it on MMPose's H36M frames
    (``preprocess_h36m.py``: the full 1000x1000 frames).

    ``head_size='joints'`` takes a per-instance head size from the ground truth instead: the 2D
    distance between ``head_joints`` (default MMPose H36M-17 joints 9 ``neck_base`` -- H36M's
    "Neck/Nose" -- and 10 ``head``, the two joints above the thorax), as PCKh does with MPII's head
    box. Instances whose head joints are invisible or coincide are left out and counted in the log.

    Metrics (prefixed ``JDR/`` by default): ``mean`` (mean of the per-joint rates, Qiu et al.'s
    summary), ``all`` (detected / counted over all joints) and one rate per joint, named from the
    dataset's metainfo (``JDR/root``, ``JDR/right_hip``, ...). Rates are fractions in [0, 1].

    Args:
        thr (float): Fraction of the head size. Defaults to 0.5.
        head_size (float | str): Head size in pixels of the original image, or ``'joints'``.
            Defaults to :data:`QIU_HEAD_SIZE` (25.6).
        head_joints (tuple[int, int]): Joints whose distance is the head size with
            ``head_size='joints'``. Defaults to (9, 10).
        collect_device (str): ``'cpu'`` or ``'gpu'``, for collecting results across ranks.
        prefix (str, optional): Metric name prefix. Defaults to ``'JDR'``.
    """

    default_prefix = 'JDR'

    def __init__(self,
                 thr: float = 0.5,
                 head_size: Union[float, str] = QIU_HEAD_SIZE,
                 head_joints: Sequence[int] = (9, 10),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not thr > 0:
            raise ValueError(f'JDRMetric: thr must be > 0, got {thr!r}')
        if isinstance(head_size, str):
            if head_size != 'joints':
                raise ValueError(
                    f"JDRMetric: head_size must be a number of pixels or 'joints', got "
                    f'{head_size!r}')
        elif not float(head_size) > 0:
            raise ValueError(f'JDRMetric: head_size must be > 0 pixels, got {head_size!r}')
        if len(head_joints) != 2 or head_joints[0] == head_joints[1]:
            raise ValueError(f'JDRMetric: head_joints must be two different joint indices, got '
                             f'{head_joints!r}')
        self.thr = float(thr)
        self.head_size = head_size if isinstance(head_size, str) else float(head_size)
        self.head_joints = tuple(int(j) for j in head_joints)

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        """Keep predicted/true joints, their mask and the head size of each instance.

        Args:
            data_batch (Sequence[dict]): The batch (unused).
            data_samples (Sequence[dict]): Model outputs: ``pred_instances.keypoints``
                (N, K, 2) and ``gt_instances.keypoints`` (N, K, 2), ``keypoints_visible``
                (N, K) or (N, K, 1), in original-image pixels.
        """
        for sample in data_samples:
            pred = np.asarray(sample['pred_instances']['keypoints'], dtype=np.float64)[..., :2]
            gt_inst = sample['gt_instances']
            gt = np.asarray(gt_inst['keypoints'], dtype=np.float64)[..., :2]
            vis = np.asarray(gt_inst.get('keypoints_visible', np.ones(gt.shape[:2])))
            if vis.ndim == 3:
                vis = vis[..., 0]
            mask = vis.reshape(gt.shape[:2]) > 0
            if self.head_size == 'joints':
                a, b = self.head_joints
                head = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
                # no head size without both head joints: the instance cannot be scored
                head = np.where(mask[:, a] & mask[:, b], head, 0.0)
            else:
                head = np.full(gt.shape[0], self.head_size)
            self.results.append(dict(pred=pred, gt=gt, mask=mask, head_size=head))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Per-joint, mean and overall detection rates of all processed instances."""
        logger = MMLogger.get_current_instance()
        pred = np.concatenate([r['pred'] for r in results])
        gt = np.concatenate([r['gt'] for r in results])
        head = np.concatenate([r['head_size'] for r in results])
        scored = head > 0
        mask = np.concatenate([r['mask'] for r in results]) & scored[:, None]
        if not scored.all():
            logger.warning(f'JDRMetric: {int((~scored).sum())} of {len(scored)} instances have '
                           f'no head size (head joints {self.head_joints} invisible or '
                           'coincident) and are not scored')
        how = (f'{self.head_size:g} px' if not isinstance(self.head_size, str)
               else f'|joint {self.head_joints[0]} - joint {self.head_joints[1]}|')
        logger.info(f'Evaluating JDR: distance <= {self.thr:g} x head size ({how}), '
                    f'{int(scored.sum())} instances')
        per_joint, mean = joint_detection_rate(pred, gt, mask, head, self.thr)
        dist = np.linalg.norm(pred - gt, axis=-1)
        detected = (dist <= self.thr * head[:, None]) & mask
        metrics = dict(mean=mean, all=float(detected.sum() / max(mask.sum(), 1)))
        names = (self.dataset_meta or {}).get('keypoint_id2name', {})
        for k, rate in enumerate(per_joint):
            metrics[str(names.get(k, f'joint_{k}'))] = float(rate)
        return metrics
