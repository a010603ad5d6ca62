"""Crop and flip that record where each view lies in the original image.

The record is two keys of ``results``:

- ``crop_bbox``: float32 ``[x1, y1, x2, y2]``, the region of the ORIGINAL image (continuous pixel
  coordinates, pixel ``i`` spans ``[i, i + 1)``) that the current image shows;
- ``flip``: bool, whether the current image is that region mirrored horizontally.

Both start from "whole image, not flipped" when absent, and every transform here composes its own
step with what is already recorded, so crops and flips can be chained in any order. See
``docs/CONTRACTS.md`` ("Geometry of views") for how a consumer maps view pixels back.
"""
from typing import Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmpretrain.datasets.transforms import RandomResizedCrop

from liftedcl_mm.registry import TRANSFORMS

_CV2_INTERP = mmcv.image.geometric.cv2_interp_codes


def get_geometry(results: dict) -> Tuple[np.ndarray, bool]:
    """The recorded ``(crop_bbox, flip)`` of ``results``, defaulting to the whole current image."""
    if 'crop_bbox' in results:
        return np.asarray(results['crop_bbox'], dtype=np.float32), bool(results.get('flip', False))
    h, w = results['img'].shape[:2]
    return np.array([0, 0, w, h], dtype=np.float32), bool(results.get('flip', False))


def compose_crop(bbox: np.ndarray, flip: bool, img_w: int, img_h: int, x0: float, y0: float,
                 x1: float, y1: float) -> np.ndarray:
    """Box in the original image of the region ``[x0, x1) x [y0, y1)`` of the current image.

    Args:
        bbox (np.ndarray): ``(4,)`` recorded box of the current image in the original.
        flip (bool): Whether the current image is mirrored.
        img_w, img_h (int): Size of the current image.
        x0, y0, x1, y1 (float): Region of the current image (continuous coordinates).

    Returns:
        np.ndarray: ``(4,)`` float32 box ``[x1, y1, x2, y2]`` in the original image. The flip state
        is unchanged by a crop.
    """
    sx = (bbox[2] - bbox[0]) / img_w
    sy = (bbox[3] - bbox[1]) / img_h
    if flip:  # current column u shows mirrored column img_w - u of the region
        x0, x1 = img_w - x1, img_w - x0
    return np.array([bbox[0] + x0 * sx, bbox[1] + y0 * sy, bbox[0] + x1 * sx, bbox[1] + y1 * sy],
                    dtype=np.float32)


@TRANSFORMS.register_module()
class RandomResizedCropWithGeometry(RandomResizedCrop):
    """MMPretrain's ``RandomResizedCrop`` that also records ``crop_bbox`` (see module doc).

    Same arguments and random draws as :class:`mmpretrain.datasets.transforms.RandomResizedCrop`
    (``scale``, ``crop_ratio_range``, ``aspect_ratio_range``, ``max_attempts``,
    ``interpolation``, ``backend``).

    **Required Keys:** img. **Modified Keys:** img, img_shape. **Added Keys:** crop_bbox, flip.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        bbox, flip = get_geometry(results)
        off_h, off_w, target_h, target_w = self.rand_crop_params(img)
        # Plain slicing is the crop (a view, no copy); the resize makes the one new array.
        crop = img[off_h:off_h + target_h, off_w:off_w + target_w]
        out_h, out_w = self.scale
        if self.backend == 'cv2':
            img = cv2.resize(crop, (out_w, out_h), interpolation=_CV2_INTERP[self.interpolation])
        else:
            img = mmcv.imresize(crop, (out_w, out_h), interpolation=self.interpolation,
                                backend=self.backend)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['crop_bbox'] = compose_crop(bbox, flip, w, h, off_w, off_h, off_w + target_w,
                                            off_h + target_h)
        results['flip'] = flip
        return results


@TRANSFORMS.register_module()
class RandomFlipWithGeometry(BaseTransform):
    """Horizontal flip with probability ``prob`` that records the view's ``flip`` state.

    ``flip`` is the view's total mirroring relative to the original image (two flips cancel), so
    it composes with earlier geometry; ``crop_bbox`` is set to the whole image when absent.

    Args:
        prob (float): Probability of flipping. Defaults to 0.5.

    **Required Keys:** img. **Modified Keys:** img. **Added Keys:** crop_bbox, flip,
    flip_direction.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    @cache_randomness
    def _do_flip(self) -> bool:
        return bool(np.random.rand() < self.prob)

    def transform(self, results: dict) -> dict:
        bbox, flip = get_geometry(results)
        if self._do_flip():
            # A view (no copy): packing makes the one contiguous copy anyway.
            results['img'] = mmcv.imflip(results['img'], direction='horizontal')
            flip = not flip
        results['crop_bbox'] = bbox
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'
