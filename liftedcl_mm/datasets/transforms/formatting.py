"""Packing of multi-view samples with their view geometry."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.structures import DataSample

from liftedcl_mm.registry import TRANSFORMS


def _to_chw_tensor(img: np.ndarray) -> torch.Tensor:
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f'expected an (H, W) or (H, W, C) image, got shape {img.shape}')
    # Exactly one copy either way: a transposed contiguous copy for strided (e.g. flipped) views,
    # or a permuted contiguous copy of a contiguous image.
    if not img.flags.c_contiguous:
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


@TRANSFORMS.register_module()
class PackViewsWithGeometry(BaseTransform):
    """Pack V views into ``inputs`` (list of V ``(C, H, W)`` tensors) and a ``DataSample``.

    The ``DataSample`` metainfo holds the keys of ``meta_keys`` present in ``results``; the
    defaults include ``view_bboxes`` (float32 ``(V, 4)``) and ``view_flips`` (bool ``(V,)``) set
    by :class:`MultiViewWithGeometry`.

    Args:
        meta_keys (Sequence[str]): Keys stored as metainfo.
    """

    DEFAULT_META_KEYS = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'view_bboxes',
                         'view_flips')
    REQUIRED_KEYS = ('view_bboxes', 'view_flips')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        imgs = results['img']
        if not isinstance(imgs, (list, tuple)):
            raise TypeError('PackViewsWithGeometry expects results["img"] to be a list of views '
                            f'(run MultiViewWithGeometry first), got {type(imgs).__name__}')
        for key in self.REQUIRED_KEYS:
            if key not in results:
                raise KeyError(f'PackViewsWithGeometry needs "{key}" (set by '
                               'MultiViewWithGeometry)')
        data_sample = DataSample()
        for key in self.meta_keys:
            if key in results:
                data_sample.set_field(results[key], key, field_type='metainfo')
        return dict(inputs=[_to_chw_tensor(img) for img in imgs], data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
