"""Human3.6M frames with 3D targets for image-based 3D pose (paper Table 4, MPJPE)."""
import os.path as osp
from collections import OrderedDict
from typing import List, Tuple

import numpy as np
from mmpose.datasets.datasets.body3d import Human36mDataset
from mmpose.registry import DATASETS as MMPOSE_DATASETS


@MMPOSE_DATASETS.register_module()
class Human36mImageDataset(Human36mDataset):
    """MMPose's ``Human36mDataset`` serving one frame per sample for a top-down image model.

    ``Human36mDataset`` reads ``preprocess_h36m.py``'s ``h36m_{train,test}.npz`` for 2D-to-3D
    lifting and yields keypoints only. This subclass adds what ``LoadImage`` /
    ``GetBBoxCenterScale`` / ``TopdownAffine`` need: ``img_path`` (``data_prefix['img']`` + the
    npz ``imgname``), ``img_id`` and the person box ``bbox`` (1, 4) -- the square of side
    ``scale * 200`` around ``center`` that the converter stores (1.2 x the 2D pose extent). The
    3D joints (``lifting_target``, ``keypoints_3d``; camera space, meters in the npz) are
    multiplied by ``scale_3d`` so that MPJPE reads in millimetres, as the paper reports it.

    ``frame_step`` keeps every n-th frame of each video (subject, action, camera), e.g. to thin
    the 10 fps npz further; the box and the 2D/3D joints always come from the kept frame (the
    base class indexes ``center``/``scale`` by sample, which is only right without thinning).

    Args:
        frame_step (int): Keep every ``frame_step``-th frame of each video. Defaults to 1.
        scale_3d (float): Factor applied to the 3D joints. Defaults to 1000 (m -> mm).
        **kwargs: ``Human36mDataset`` arguments (``ann_file``, ``camera_param_file``,
            ``data_root``, ``data_prefix``, ``pipeline``, ...); ``seq_len`` must stay 1 and
            ``subset_frac`` 1 (``frame_step`` thins deterministically).
    """

    def __init__(self, *args, frame_step: int = 1, scale_3d: float = 1000., **kwargs) -> None:
        if kwargs.get('seq_len', 1) != 1 or kwargs.get('multiple_target', 0):
            raise ValueError('Human36mImageDataset serves single frames: seq_len must be 1 and '
                             'multiple_target 0')
        if kwargs.get('keypoint_2d_src', 'gt') != 'gt':
            raise ValueError('Human36mImageDataset reads the ground-truth 2D joints '
                             '(keypoint_2d_src="gt")')
        if kwargs.get('subset_frac', 1.0) != 1.0:
            # the base class picks a random window; thin deterministically instead
            raise ValueError('Human36mImageDataset: use frame_step (or indices) instead of '
                             'subset_frac')
        if int(frame_step) < 1:
            raise ValueError(f'Human36mImageDataset: frame_step must be >= 1, got {frame_step!r}')
        # read by get_sequence_indices(), which the base __init__ calls
        self.frame_step = int(frame_step)
        self.scale_3d = float(scale_3d)
        super().__init__(*args, **kwargs)

    def get_sequence_indices(self) -> List[List[int]]:
        """One ``[frame]`` per sample: every ``frame_step``-th frame of each video, in order."""
        videos = OrderedDict()
        for idx, name in enumerate(self.ann_data['imgname']):
            videos.setdefault(self._parse_h36m_imgname(name), []).append(idx)
        return [[idx] for key in sorted(videos) for idx in videos[key][::self.frame_step]]

    def _load_annotations(self) -> Tuple[List[dict], List[dict]]:
        instance_list, image_list = super()._load_annotations()
        centers = np.asarray(self.ann_data['center'], dtype=np.float32)
        scales = np.asarray(self.ann_data['scale'], dtype=np.float32)
        for info in instance_list:
            frame = int(info['img_ids'][-1])
            center, half = centers[frame], scales[frame] * 100.
            info['img_path'] = osp.join(self.data_prefix['img'], str(info['img_paths'][-1]))
            info['img_id'] = frame
            info['center'] = center.reshape(1, 2)
            info['scale'] = scales[frame]
            info['bbox'] = np.array([[center[0] - half, center[1] - half,
                                      center[0] + half, center[1] + half]], dtype=np.float32)
            info['bbox_score'] = np.ones(1, dtype=np.float32)
            info['lifting_target'] = info['lifting_target'] * self.scale_3d
            info['keypoints_3d'] = info['keypoints_3d'] * self.scale_3d
        return instance_list, image_list
