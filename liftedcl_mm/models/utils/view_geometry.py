"""Crop boxes and flips of the views, gathered from the data samples' metainfo."""
from typing import List, Tuple

import numpy as np
import torch


def view_geometry(data_samples: List, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack the ``view_bboxes``/``view_flips`` metainfo that ``PackViewsWithGeometry`` set.

    These undo the geometric augmentation for the equivariant loss
    (:func:`align_shared_regions`).

    Args:
        data_samples (list[DataSample]): One per image, with ``view_bboxes`` (V, 4)
            ``[x1, y1, x2, y2]`` in original-image pixels and ``view_flips`` (V,) bool.
        device (torch.device): Where the tensors go.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``bboxes`` (N, V, 4) float32 and ``flips``
        (N, V) bool, V >= 2.
    """
    bboxes, flips = [], []
    for i, sample in enumerate(data_samples):
        if 'view_bboxes' not in sample or 'view_flips' not in sample:
            raise KeyError(f'data sample {i} lacks view_bboxes/view_flips metainfo; '
                           'use PackViewsWithGeometry in the pipeline')
        bboxes.append(torch.as_tensor(np.asarray(sample.view_bboxes, dtype=np.float32)))
        flips.append(torch.as_tensor(np.asarray(sample.view_flips, dtype=bool)))
    try:
        bboxes = torch.stack(bboxes).to(device)
        flips = torch.stack(flips).to(device)
    except RuntimeError as err:  # ragged per-sample shapes
        raise ValueError(f'view_bboxes/view_flips differ in shape across samples: {err}')
    if bboxes.dim() != 3 or bboxes.shape[1] < 2 or bboxes.shape[2] != 4:
        raise ValueError(f'view_bboxes must be (V>=2, 4) per sample, got '
                         f'{tuple(bboxes.shape[1:])}')
    if tuple(flips.shape) != tuple(bboxes.shape[:2]):
        raise ValueError(f'view_flips must be ({bboxes.shape[1]},) per sample, got '
                         f'{tuple(flips.shape[1:])}')
    return bboxes, flips
