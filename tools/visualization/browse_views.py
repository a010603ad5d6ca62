"""Browse the two views of pre-training samples and the points the equivariant loss pairs up.

In the spirit of MMPretrain's ``tools/visualization/browse_dataset.py``, for pre-training
configs whose pipeline records view geometry (``MultiViewWithGeometry``)::

    python tools/visualization/browse_views.py configs/liftedcl_tiny_demo.py \\
        --output-dir work_dirs/browse_views --num 8 [--seed 0] [--cfg-options ...]

For each sample one PNG with three panels: the source image (what ``MultiViewWithGeometry``
received) with the query box (orange), the key box (cyan), their shared region (green) and the
``align_size``^2 aligned locations; then the query view and the key view as the network gets
them (augmented, flipped or not) with the same locations mapped into each. Colour follows the
location's index, so a dot of one colour marks the same point in all three panels (in the
source: the query's point as a dot, the key's as a ring around it). The locations come from
the model's own alignment (:func:`align_shared_regions`, probed with coordinate maps; see
``liftedcl_mm/visualization/view_points.py``) and are taken back to the source by the
pipeline's own geometry (:func:`compose_crop`); the tool prints how far apart the two views'
points land there.

By default the points are where the alignment samples each view (a correct pipeline: 0 px
apart). ``--feature-stride 32`` shows instead where the backbone features that the loss
compares are centred (a ResNet centres map cell ``j`` on view pixel ``32 j``): this is where a
cell-centre convention that is off by half a cell shows, as rings beside the dots for pairs
with one flipped view. The model's ``align_cell_centres`` (when the config has it) and
``--align-args`` are passed on to the alignment.
"""
import argparse
import colorsys
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner.utils import set_random_seed

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.transforms import MultiViewWithGeometry  # noqa: E402
from liftedcl_mm.registry import DATASETS  # noqa: E402
from liftedcl_mm.utils import register_all_modules  # noqa: E402
from liftedcl_mm.visualization import compose_grid, grid_layout, shared_region_points  # noqa

QUERY_RGB, KEY_RGB, SHARED_RGB = (255, 140, 0), (0, 200, 255), (0, 200, 0)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Browse the two views of pre-training samples '
                                     'and the locations the equivariant loss pairs up')
    parser.add_argument('config', help='pre-training config file')
    parser.add_argument('--output-dir', '-o', required=True, help='where the PNGs go')
    parser.add_argument('--num', '-n', type=int, default=8, help='number of samples')
    parser.add_argument('--start', type=int, default=0, help='index of the first sample')
    parser.add_argument('--seed', type=int, default=0, help='seed of the augmentations')
    parser.add_argument('--panel-size', type=int, default=384, help='panel height in pixels')
    parser.add_argument('--align-size', type=int, default=None,
                        help="side of the aligned grid; default: the config's model.align_size")
    parser.add_argument('--feature-stride', type=int, default=1,
                        help='1: where the alignment samples each view; the backbone stride '
                        '(32 for ResNet C5): where the compared features are centred')
    parser.add_argument('--align-args', nargs='+', action=DictAction, default={},
                        help='keyword arguments of align_shared_regions, e.g. min_overlap=0.1')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (as in tools/train.py)')
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f'--num must be >= 1, got {args.num}')
    return args


def run_views(dataset, index: int) -> Dict:
    """Run the dataset's pipeline on sample ``index``, keeping the image the views come from.

    Returns:
        dict: ``source`` (H, W, 3) image entering ``MultiViewWithGeometry``, ``views`` list of
        (h, w, 3) images after the pipeline, ``view_bboxes`` (V, 4), ``view_flips`` (V,),
        ``img_path``.
    """
    results = dataset.get_data_info(index)
    source = None
    for transform in dataset.pipeline.transforms:
        if isinstance(transform, MultiViewWithGeometry):
            source = np.array(results['img'], copy=True)
        results = transform(results)
        if results is None:
            raise RuntimeError(f'sample {index}: {type(transform).__name__} returned None')
    if source is None:
        raise ValueError('the pipeline has no MultiViewWithGeometry: it records no view '
                         'geometry, so there is nothing to browse')
    sample = results['data_samples']
    views = [v.permute(1, 2, 0).numpy() for v in results['inputs']]
    return dict(source=source, views=views, img_path=sample.get('img_path', f'#{index}'),
                view_bboxes=np.asarray(sample.view_bboxes, np.float32),
                view_flips=np.asarray(sample.view_flips, bool))


def point_colors(num: int) -> np.ndarray:
    """``(num, 3)`` uint8 RGB: a hue per location index (red -> violet)."""
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(0.85 * i / max(num - 1, 1), 1, 1)]
                     for i in range(num)], np.uint8)


def _to_panel(image_bgr: np.ndarray, height: int):
    """RGB copy of ``image_bgr`` scaled to ``height`` rows; returns (panel, scale)."""
    import cv2
    scale = height / image_bgr.shape[0]
    width = max(1, int(round(image_bgr.shape[1] * scale)))
    gray = image_bgr.ndim == 2 or image_bgr.shape[2] == 1
    rgb = (cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB) if gray
           else np.ascontiguousarray(image_bgr[..., ::-1]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR), width / rgb.shape[1]


def _fixed(points: np.ndarray, scale: float) -> np.ndarray:
    # Continuous coordinate c (pixel i spans [i, i + 1)) -> panel pixel c * scale - 0.5, in
    # OpenCV's 4-bit fixed point (sub-pixel drawing).
    return np.round((np.asarray(points) * scale - 0.5) * 16).astype(np.int64)


def _draw_box(panel, box, scale, color, thickness=2):
    import cv2
    (x0, y0), (x1, y1) = _fixed(np.reshape(box, (2, 2)), scale)
    cv2.rectangle(panel, (int(x0), int(y0)), (int(x1), int(y1)), color, thickness, cv2.LINE_AA,
                  shift=4)


def _draw_points(panel, points, scale, colors, radius=3):
    import cv2
    for (x, y), color in zip(_fixed(points, scale), colors):
        cv2.circle(panel, (int(x), int(y)), 16 * (radius + 1), (0, 0, 0), -1, cv2.LINE_AA,
                   shift=4)
        cv2.circle(panel, (int(x), int(y)), 16 * radius, tuple(int(c) for c in color), -1,
                   cv2.LINE_AA, shift=4)


def _draw_rings(panel, points, scale, colors, radius=6):
    import cv2
    for (x, y), color in zip(_fixed(points, scale), colors):
        cv2.circle(panel, (int(x), int(y)), 16 * radius, tuple(int(c) for c in color), 2,
                   cv2.LINE_AA, shift=4)


def draw_sample(sample: Dict, geometry: Dict, align_size: int, panel_size: int = 384,
                what: str = 'aligned locations'):
    """The three panels of one sample: source, query view, key view.

    Returns:
        tuple[np.ndarray, dict]: RGB picture and its :func:`grid_layout`.
    """
    import cv2
    boxes, flips = sample['view_bboxes'], sample['view_flips']
    source, src_scale = _to_panel(sample['source'], panel_size)
    views = [_to_panel(view, panel_size) for view in sample['views'][:2]]
    colors = point_colors(align_size**2)
    shared = np.concatenate([np.maximum(boxes[0, :2], boxes[1, :2]),
                             np.minimum(boxes[0, 2:], boxes[1, 2:])])
    if geometry['valid']:
        overlay = source.copy()
        (x0, y0), (x1, y1) = _fixed(shared.reshape(2, 2), src_scale)
        cv2.rectangle(overlay, (int(x0), int(y0)), (int(x1), int(y1)), SHARED_RGB, -1, shift=4)
        source = cv2.addWeighted(overlay, 0.25, source, 0.75, 0)
        _draw_box(source, shared, src_scale, SHARED_RGB, 1)
    _draw_box(source, boxes[0], src_scale, QUERY_RGB)
    _draw_box(source, boxes[1], src_scale, KEY_RGB)
    if geometry['valid']:
        # In the source: the query's points as dots, the key's as rings (apart when they
        # disagree, around the dots when they agree).
        _draw_points(source, geometry['source_points'][0], src_scale, colors)
        _draw_rings(source, geometry['source_points'][1], src_scale, colors)
        for (panel, scale), points in zip(views, geometry['view_points']):
            _draw_points(panel, points, scale, colors)
    layout = grid_layout([source.shape[1]] + [p.shape[1] for p, _ in views], [panel_size],
                         title_lines=1, top_lines=2)
    h, w = sample['source'].shape[:2]
    titles = [[[f'source {w}x{h}']]]
    for i, name in enumerate(('query', 'key')):
        vh, vw = sample['views'][i].shape[:2]
        titles[0].append([f'view {i} ({name}) {vw}x{vh}, '
                          f"{'FLIPPED' if flips[i] else 'not flipped'}"])
    caption = [f"{osp.basename(str(sample['img_path']))}: boxes query orange, key cyan, shared "
               f'green; {align_size}x{align_size} {what}, one colour per location']
    caption.append(f"query (dots) and key (rings) land within {geometry['discrepancy']:.3f} px "
                   'of each other in the source' if geometry['valid'] else
                   'pair masked out of loss_equiv: no shared region (or less than min_overlap)')
    image = compose_grid([[source, *(p for p, _ in views)]], layout, titles, caption)
    return image, layout


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    import cv2
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'liftedcl_mm'))
    model_cfg = cfg.get('model', {})
    align_size = args.align_size or int(model_cfg.get('align_size', 16))
    cell_centres = model_cfg.get('align_cell_centres')
    what = ('aligned locations' if args.feature_stride == 1 else
            f'centres of the compared features (stride {args.feature_stride})')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    set_random_seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    records = []
    stop = min(len(dataset), args.start + args.num)
    for index in range(args.start, stop):
        sample = run_views(dataset, index)
        if len(sample['views']) < 2:
            raise ValueError(f'sample {index} has {len(sample["views"])} view(s); the '
                             'equivariant loss pairs views 0 and 1')
        sizes = [v.shape[:2] for v in sample['views'][:2]]
        align_args = dict(args.align_args)
        if cell_centres is not None:  # the model's convention, as LiftedCL passes it
            align_args.setdefault('cell_centres', cell_centres)
            align_args.setdefault('view_size', tuple(sizes[0]))
        geometry = shared_region_points(sample['view_bboxes'][:2], sample['view_flips'][:2],
                                        sizes, align_size, args.feature_stride, **align_args)
        image, layout = draw_sample(sample, geometry, align_size, args.panel_size, what)
        stem = osp.splitext(osp.basename(str(sample['img_path'])))[0]
        out = osp.join(args.output_dir, f'{index:05d}_{stem}.png')
        if not cv2.imwrite(out, image[..., ::-1]):
            raise OSError(f'could not write {out}')
        flips = ', '.join(f'view {i} {"flipped" if f else "not flipped"}'
                          for i, f in enumerate(sample['view_flips'][:2]))
        print(f'{out}: {flips}; ' + (f"points agree within {geometry['discrepancy']:.3f} px"
                                      if geometry['valid'] else 'pair masked out'))
        records.append(dict(sample, geometry=geometry, layout=layout, out_file=out,
                            view_sizes=sizes, align_size=align_size, align_args=align_args))
    return records


if __name__ == '__main__':
    main()
