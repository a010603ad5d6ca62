"""Where the equivariant loss's aligned locations lie in each view and in the source image.

Nothing here re-derives the alignment: :func:`shared_region_points` asks the model's own
:func:`align_shared_regions` by feeding it *coordinate maps* (each cell holds the view position
of its centre). Bilinear resampling of a linear map returns the position it samples, so the
aligned outputs are view positions. They are then taken back to the source image by the
pipeline's own :func:`compose_crop` (the code that recorded the boxes). Two independent pieces
of code thus have to agree for the two views' points to land on the same source pixel.

Two questions can be asked (``feature_stride``):

- ``1`` (default): where does the alignment sample each view? The maps have one cell per view
  pixel, where every cell-centre convention of the alignment coincides, so the answer is the
  RoIAlign bin centres of the shared region, whatever options the alignment is given.
- ``s > 1`` (the backbone's stride, 32 for a ResNet's C5): where are the *features* the loss
  compares centred? The maps have the backbone's resolution ``(H / s, W / s)`` and cell ``j``
  holds ``s j + 0.5``, where a ResNet centres it (docs/CONTRACTS.md, "Feature maps"); the
  alignment runs with the options it is given (e.g. the model's ``cell_centres``). A convention
  that misplaces cells then shows as the two views' points landing apart in the source, and
  points past the outermost cell centres show where the border clamp puts them.
"""
from typing import Dict, Sequence, Tuple

import numpy as np
import torch

from liftedcl_mm.datasets.transforms.geometry import compose_crop
from liftedcl_mm.models.utils import align_shared_regions


def coordinate_map(height: int, width: int, stride: int = 1) -> torch.Tensor:
    """Cell-centre positions of a backbone map over an ``H x W`` view.

    Args:
        height (int): View height ``H`` in pixels.
        width (int): View width ``W``.
        stride (int): Backbone stride ``s``; ``H`` and ``W`` must be multiples of it.

    Returns:
        torch.Tensor: ``(1, 2, H / s, W / s)``: channel 0 holds the x, channel 1 the y of each
        cell's centre in continuous view pixels (pixel ``i`` spans ``[i, i + 1)``), at
        ``s j + 0.5`` (a ResNet's centres; ``j + 0.5`` for ``s = 1``).
    """
    if height % stride or width % stride:
        raise ValueError(f'the view ({height} x {width}) is not a multiple of the stride {stride}')
    xs = torch.arange(width // stride, dtype=torch.float32) * stride + 0.5
    ys = torch.arange(height // stride, dtype=torch.float32) * stride + 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x, grid_y])[None]


def shared_region_points(bboxes: np.ndarray,
                         flips: Sequence[bool],
                         view_sizes: Sequence[Tuple[int, int]],
                         align_size: int,
                         feature_stride: int = 1,
                         **align_kwargs) -> Dict:
    """The ``align_size``^2 locations the equivariant loss pairs up, in both views and the source.

    Args:
        bboxes (np.ndarray): ``(2, 4)`` crop boxes ``[x1, y1, x2, y2]`` of the query and key
            views in source pixels (``view_bboxes`` metainfo).
        flips (Sequence[bool]): ``(2,)`` whether each view was flipped (``view_flips``).
        view_sizes (Sequence[tuple]): ``(H, W)`` of each view.
        align_size (int): Side ``S`` of the aligned grid (the model's ``align_size``).
        feature_stride (int): 1 for the sample positions, the backbone's stride for the
            centres of the compared features (see the module docstring).
        **align_kwargs: Passed on to :func:`align_shared_regions` (e.g. ``min_overlap``,
            ``cell_centres`` and ``view_size``).

    Returns:
        dict: ``valid`` (bool, False when the loss masks the pair out); ``view_points`` two
        ``(S*S, 2)`` arrays of ``(x, y)`` in continuous view pixels, row-major over the
        aligned grid (location ``(a, b)`` is row ``a * S + b``); ``source_points`` two
        ``(S*S, 2)`` arrays, the same points taken back to the source by each view's
        geometry; ``discrepancy`` the largest distance (source pixels) between the two.
    """
    bboxes = np.asarray(bboxes, dtype=np.float32)
    flips = [bool(f) for f in flips]
    if bboxes.shape != (2, 4) or len(flips) != 2 or len(view_sizes) != 2:
        raise ValueError('expected the boxes (2, 4), flips (2,) and sizes of two views, got '
                         f'{bboxes.shape}, {len(flips)} and {len(view_sizes)}')
    maps = [coordinate_map(int(h), int(w), int(feature_stride)) for h, w in view_sizes]
    boxes = torch.from_numpy(bboxes)
    flip_t = torch.tensor(flips)
    aligned_q, aligned_k, valid = align_shared_regions(
        maps[0], maps[1], boxes[:1], boxes[1:], flip_t[:1], flip_t[1:],
        out_size=int(align_size), **align_kwargs)
    view_points, source_points = [], []
    for aligned, box, flip, (height, width) in zip((aligned_q, aligned_k), bboxes, flips,
                                                   view_sizes):
        points = aligned[0].permute(1, 2, 0).reshape(-1, 2).double().numpy()
        view_points.append(points)
        # A point is the degenerate region [x, x] x [y, y] of the view.
        src = compose_crop(box.astype(np.float64), flip, int(width), int(height), points[:, 0],
                           points[:, 1], points[:, 0], points[:, 1])
        source_points.append(np.stack([src[0], src[1]], axis=-1).astype(np.float64))
    discrepancy = float(np.linalg.norm(source_points[0] - source_points[1], axis=-1).max())
    return dict(valid=bool(valid[0]), view_points=view_points, source_points=source_points,
                discrepancy=discrepancy)
