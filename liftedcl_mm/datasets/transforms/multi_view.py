"""Several augmented views of one image, each with its geometry."""
import copy
from typing import List, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from liftedcl_mm.registry import TRANSFORMS
from .geometry import get_geometry


@TRANSFORMS.register_module()
class MultiViewWithGeometry(BaseTransform):
    """Like MMPretrain's ``MultiView``, but also keeps each view's geometry.

    Each view runs its pipeline on a copy of ``results`` and contributes its ``img`` and its
    recorded ``crop_bbox``/``flip`` (a view without crop/flip has the whole image, unflipped).

    The input image is shared by all views instead of deep-copied per view (the copy costs as much
    as a crop); it is made read-only while the views run, so a transform that would modify it in
    place raises instead of silently corrupting the next view.

    Args:
        transforms (list[list[dict | callable]]): One pipeline per group of views.
        num_views (int | list[int]): Number of views of each pipeline.

    **Required Keys:** img. **Modified Keys:** img (list of V arrays). **Added Keys:**
    view_bboxes (float32 ``(V, 4)``), view_flips (bool ``(V,)``).
    """

    def __init__(self, transforms: List[Sequence], num_views: Union[int, List[int]]) -> None:
        if isinstance(num_views, int):
            num_views = [num_views]
        if not isinstance(num_views, (list, tuple)) or len(num_views) != len(transforms):
            raise ValueError(f'num_views {num_views!r} must be an int or a list with one entry '
                             f'per pipeline ({len(transforms)} pipelines)')
        if any(not isinstance(n, int) or n < 1 for n in num_views):
            raise ValueError(f'num_views must be positive ints, got {num_views!r}')
        self.num_views = list(num_views)
        # Built from our registry so that our transforms resolve without a default scope.
        self.pipelines = [
            Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in trans])
            for trans in transforms
        ]
        self.transforms = []
        for pipeline, num in zip(self.pipelines, self.num_views):
            self.transforms.extend([pipeline] * num)

    def transform(self, results: dict) -> dict:
        img = results['img']
        writeable = img.flags.writeable
        img.flags.writeable = False
        try:
            imgs, bboxes, flips = [], [], []
            for pipeline in self.transforms:
                view = {k: v if k == 'img' else copy.deepcopy(v) for k, v in results.items()}
                view = pipeline(view)
                if view is None:
                    raise RuntimeError(f'a view pipeline returned None for '
                                       f'{results.get("img_path", "<no img_path>")}')
                bbox, flip = get_geometry(view) if 'crop_bbox' in view else (
                    np.array([0, 0, img.shape[1], img.shape[0]], np.float32),
                    bool(view.get('flip', False)))
                imgs.append(view['img'])
                bboxes.append(bbox)
                flips.append(flip)
        finally:
            if writeable:
                img.flags.writeable = True
        results['img'] = imgs
        results['view_bboxes'] = np.stack(bboxes).astype(np.float32)
        results['view_flips'] = np.array(flips, dtype=bool)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, '
                f'pipelines={self.pipelines})')
