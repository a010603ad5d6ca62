"""Crop COCO person boxes into 256x192 human images (LiftedCL pre-training data, paper App. A).

Example::

    python tools/dataset_converters/prepare_coco_human_crops.py \
        --coco-root data/coco --split train2017 --out data/coco_human --workers 8

Reads ``<coco-root>/annotations/person_keypoints_<split>.json`` and the images in
``<coco-root>/<split>/``. Keeps the person boxes with ``iscrowd == 0``, at least
``--min-keypoints`` labelled keypoints (default 1: ~150K boxes on train2017, the paper's ~150K) and
both sides at least ``--min-box-size`` pixels (default 1). Each box is extended about its centre
to height:width = 4:3 (the short side grows), cropped with zero padding outside the image and
resized to 256x192 (``cv2.warpAffine``, bilinear; boxes shrunk by more than 2x are
area-averaged first to avoid aliasing). Writes

- ``<out>/crops/<split>/<image_id>_<ann_id>.jpg``;
- ``<out>/annotations/<split>.json``: an MMEngine-style ``{"metainfo", "data_list"}`` file, one
  entry per crop with ``img_path`` (relative to the crop folder), ``src_file``, ``src_width``,
  ``src_height``, ``bbox`` (COCO ``[x, y, w, h]``), ``ext_bbox`` (``[x1, y1, x2, y2]``, the
  extended box that was cropped, continuous pixel coordinates), ``ann_id`` and ``image_id``.

Every file is written to a temporary name in its folder and renamed, so no half-written file ever
has a final name. A second run skips crops whose JPEG is complete and redoes any other one.
Unreadable images and malformed annotations are reported by name at the end; the exit status is
1 if any failed, unless ``--skip-bad`` is given.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import sys
import tempfile
from multiprocessing import Pool

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.transforms.loading import (  # noqa: E402
    decode_image_checked, is_complete_jpeg_file)

TMP_PREFIX = '.tmp_'


def extend_box(x: float, y: float, w: float, h: float, aspect: float = 4. / 3.):
    """Grow the short side of COCO box ``[x, y, w, h]`` about its centre to ``h / w == aspect``.

    Returns:
        list[float]: ``[x1, y1, x2, y2]``.
    """
    cx, cy = x + w / 2.0, y + h / 2.0
    if h > aspect * w:
        w = h / aspect
    else:
        h = w * aspect
    return [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]


def crop_box(img: np.ndarray, box, out_h: int, out_w: int) -> np.ndarray:
    """Crop the continuous box ``[x1, y1, x2, y2]`` (zero padding outside) and resize it.

    Output pixel ``u`` samples the image at ``x = x1 + (u + 0.5) * (x2 - x1) / out_w`` (same for
    rows), i.e. pixel centres are aligned as in ``cv2.resize``.
    """
    x1, y1, x2, y2 = box
    sx, sy = out_w / (x2 - x1), out_h / (y2 - y1)
    if sx < 0.5 or sy < 0.5:
        # Strong shrink: bilinear sampling would alias, so first area-average the part of the
        # image under the box down to about the output resolution (exact continuous mapping
        # x' = (x - rx0) * kx), then warp the (now ~1:1) remainder.
        img_h, img_w = img.shape[:2]
        # A margin of two output pixels keeps real image data (not padding) next to the box edge.
        mx, my = math.ceil(2 / sx), math.ceil(2 / sy)
        rx0, ry0 = max(0, math.floor(x1) - mx), max(0, math.floor(y1) - my)
        rx1, ry1 = min(img_w, math.ceil(x2) + mx), min(img_h, math.ceil(y2) + my)
        rw = max(1, round((rx1 - rx0) * min(sx, 1.0)))
        rh = max(1, round((ry1 - ry0) * min(sy, 1.0)))
        kx, ky = rw / (rx1 - rx0), rh / (ry1 - ry0)
        img = cv2.resize(img[ry0:ry1, rx0:rx1], (rw, rh), interpolation=cv2.INTER_AREA)
        x1, x2 = (x1 - rx0) * kx, (x2 - rx0) * kx
        y1, y2 = (y1 - ry0) * ky, (y2 - ry0) * ky
        sx, sy = out_w / (x2 - x1), out_h / (y2 - y1)
    # Source pixel index i (centre i + 0.5) goes to output index u with (u + 0.5) / s = i + 0.5 - x1.
    mat = np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])
    return cv2.warpAffine(img, mat, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=osp.splitext(path)[1],
                               dir=osp.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_annotation(ann: dict, img_w: float, img_h: float):
    """Reason why a person annotation is malformed, or None when it is usable."""
    for key in ('id', 'image_id', 'bbox'):
        if key not in ann:
            return f'missing key "{key}"'
    box = ann['bbox']
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(map(_number, box)):
        return f'bbox {box!r} is not 4 finite numbers'
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return f'bbox {box!r} has zero or negative size'
    if x >= img_w or y >= img_h or x + w <= 0 or y + h <= 0:
        return f'bbox {box!r} lies outside the {img_w}x{img_h} image'
    return None


def collect_tasks(ann_file: str, img_dir: str, min_keypoints: int, min_box_size: float):
    """Read the COCO file and group the kept person boxes by image.

    Returns:
        tuple: (tasks, bad, num_kept) with tasks a list of dicts ``(image, anns)`` and bad a list
        of ``(name, reason)`` for malformed entries.
    """
    try:
        with open(ann_file, 'r') as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'annotation file {ann_file} is not valid JSON: {err}') from err
    if not isinstance(coco, dict) or not isinstance(coco.get('images'), list) or \
            not isinstance(coco.get('annotations'), list):
        raise ValueError(f'annotation file {ann_file} lacks the COCO "images"/"annotations" lists')
    person_ids = {c.get('id') for c in coco.get('categories', []) if c.get('name') == 'person'}
    if not person_ids:
        person_ids = {1}  # COCO's person category id

    bad = []
    images = {}
    for img in coco['images']:
        missing = [k for k in ('id', 'file_name', 'width', 'height') if k not in img]
        if missing:
            bad.append((f'image entry {img.get("id", img.get("file_name", "?"))}',
                        f'missing keys {missing}'))
            continue
        if not (_number(img['width']) and _number(img['height'])) or img['width'] <= 0 or \
                img['height'] <= 0:
            bad.append((f'image entry {img["id"]} ({img["file_name"]})',
                        f'size {img["width"]!r}x{img["height"]!r} is not positive numbers'))
            continue
        images[img['id']] = img

    by_image = {}
    num_kept = 0
    for ann in coco['annotations']:
        if ann.get('category_id', 1) not in person_ids or ann.get('iscrowd', 0):
            continue
        name = f'annotation {ann.get("id", "?")} (image {ann.get("image_id", "?")})'
        img = images.get(ann.get('image_id'))
        if img is None:
            bad.append((name, 'refers to an unknown or malformed image entry'))
            continue
        reason = check_annotation(ann, img['width'], img['height'])
        if reason is not None:
            bad.append((name, reason))
            continue
        nkpt = ann.get('num_keypoints')
        if nkpt is None and isinstance(ann.get('keypoints'), list):
            nkpt = sum(1 for v in ann['keypoints'][2::3] if v > 0)
        if (nkpt or 0) < min_keypoints or min(ann['bbox'][2:]) < min_box_size:
            continue
        by_image.setdefault(img['id'], []).append(ann)
        num_kept += 1
    tasks = [
        dict(image=images[i], img_path=osp.join(img_dir, images[i]['file_name']),
             anns=sorted(anns, key=lambda a: a['id'])) for i, anns in sorted(by_image.items())
    ]
    return tasks, bad, num_kept


class _Worker:
    """Crops every kept box of one image (picklable for ``multiprocessing``)."""

    def __init__(self, crop_dir: str, out_h: int, out_w: int, quality: int):
        self.crop_dir = crop_dir
        self.out_h = out_h
        self.out_w = out_w
        self.quality = quality

    def __call__(self, task: dict):
        image = task['image']
        records, bad = [], []
        written = skipped = 0
        img = None
        for ann in task['anns']:
            file_name = f'{ann["image_id"]}_{ann["id"]}.jpg'
            out_path = osp.join(self.crop_dir, file_name)
            ext = extend_box(*[float(v) for v in ann['bbox']])
            if is_complete_jpeg_file(out_path):
                skipped += 1
            else:
                if img is None:
                    try:
                        with open(task['img_path'], 'rb') as f:
                            data = f.read()
                        img = decode_image_checked(data, task['img_path'])
                    except (OSError, ValueError) as err:
                        bad.append((task['img_path'], str(err)))
                        return records, bad, written, skipped
                    if img.shape[:2] != (image['height'], image['width']):
                        bad.append((task['img_path'],
                                    f'image is {img.shape[1]}x{img.shape[0]} but the annotation '
                                    f'says {image["width"]}x{image["height"]}'))
                        return records, bad, written, skipped
                crop = crop_box(img, ext, self.out_h, self.out_w)
                ok, buf = cv2.imencode('.jpg', crop, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if not ok:
                    bad.append((file_name, 'JPEG encoding failed'))
                    continue
                write_bytes_atomic(out_path, buf.tobytes())
                written += 1
            records.append(
                dict(img_path=file_name, src_file=image['file_name'], src_width=image['width'],
                     src_height=image['height'], bbox=[float(v) for v in ann['bbox']],
                     ext_bbox=[round(v, 3) for v in ext], ann_id=ann['id'],
                     image_id=ann['image_id']))
        return records, bad, written, skipped


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Crop COCO person boxes to 256x192 images.')
    parser.add_argument('--coco-root', required=True, help='COCO root (annotations/, <split>/)')
    parser.add_argument('--split', default='train2017', help='split, e.g. train2017')
    parser.add_argument('--out', required=True, help='output root, e.g. data/coco_human')
    parser.add_argument('--workers', type=int, default=4,
                        help='worker processes (0: run in this process)')
    parser.add_argument('--min-keypoints', type=int, default=1,
                        help='keep boxes with at least this many labelled keypoints '
                        '(default 1: ~150K boxes on train2017)')
    parser.add_argument('--min-box-size', type=float, default=1.0,
                        help='keep boxes whose width and height are at least this (pixels)')
    parser.add_argument('--height', type=int, default=256, help='crop height')
    parser.add_argument('--width', type=int, default=192, help='crop width')
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality')
    parser.add_argument('--skip-bad', action='store_true',
                        help='exit 0 even if some images/annotations failed (they are skipped)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    ann_file = osp.join(args.coco_root, 'annotations', f'person_keypoints_{args.split}.json')
    img_dir = osp.join(args.coco_root, args.split)
    if not osp.isfile(ann_file):
        print(f'error: annotation file {ann_file} does not exist', file=sys.stderr)
        return 2
    if not osp.isdir(img_dir):
        print(f'error: image folder {img_dir} does not exist', file=sys.stderr)
        return 2
    if args.height < 1 or args.width < 1:
        print(f'error: crop size must be positive, got {args.height}x{args.width}',
              file=sys.stderr)
        return 2
    try:
        tasks, bad, num_kept = collect_tasks(ann_file, img_dir, args.min_keypoints,
                                             args.min_box_size)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    crop_dir = osp.join(args.out, 'crops', args.split)
    os.makedirs(crop_dir, exist_ok=True)
    # Temporary files left by an interrupted run never carry a final name: drop them.
    for stale in glob.glob(osp.join(crop_dir, TMP_PREFIX + '*')):
        os.remove(stale)

    worker = _Worker(crop_dir, args.height, args.width, args.quality)
    records, written, skipped = [], 0, 0
    from tqdm import tqdm
    progress = tqdm(total=len(tasks), unit='img', disable=args.no_progress,
                    desc=f'cropping {args.split}')
    if args.workers > 0:
        chunk = max(1, min(64, len(tasks) // (args.workers * 8) or 1))
        # One OpenCV thread per worker: the processes are the parallelism, and OpenCV's own
        # thread pool in every worker would oversubscribe the cores.
        with Pool(args.workers, initializer=cv2.setNumThreads, initargs=(1, )) as pool:
            results = pool.imap_unordered(worker, tasks, chunksize=chunk)
            for res in results:
                recs, errs, n_w, n_s = res
                records += recs
                bad += errs
                written += n_w
                skipped += n_s
                progress.update()
    else:
        for task in tasks:
            recs, errs, n_w, n_s = worker(task)
            records += recs
            bad += errs
            written += n_w
            skipped += n_s
            progress.update()
    progress.close()

    records.sort(key=lambda r: (r['image_id'], r['ann_id']))
    ann_out = osp.join(args.out, 'annotations', f'{args.split}.json')
    os.makedirs(osp.dirname(ann_out), exist_ok=True)
    metainfo = dict(
        source=osp.basename(ann_file), split=args.split, crop_size=[args.height, args.width],
        aspect_ratio='height:width = 4:3', min_keypoints=args.min_keypoints,
        min_box_size=args.min_box_size)
    write_bytes_atomic(ann_out, json.dumps(dict(metainfo=metainfo, data_list=records)).encode())

    print(f'{len(records)} crops listed in {ann_out} ({written} written, {skipped} already '
          f'complete; {num_kept} boxes kept by the filters)')
    if bad:
        print(f'{len(bad)} failed entries:', file=sys.stderr)
        for name, reason in bad:
            print(f'  {name}: {reason}', file=sys.stderr)
        if not args.skip_bad:
            print('exit status 1: fix the entries above or pass --skip-bad to skip them',
                  file=sys.stderr)
            return 1
    if not records:
        print(f'error: no crop was produced from {ann_file}: no person box passed the filters '
              f'(--min-keypoints {args.min_keypoints}, --min-box-size {args.min_box_size})',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
