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
  extended box that was cropped, continuous pixel coordinates), ``ann_id`` and ``image_id``,
  plus ``keypoints_3d`` unchanged when the annotation has it (synthetic 3D truth).

Every file is written to a temporary name in its folder and renamed, so no half-written file ever
has a final name; the final files get the mode of a plain ``open()`` (e.g. 0644 under umask 022).
A second run skips crops whose JPEG is complete and redoes any other one.

The input is untrusted: image and annotation ids must be integers (as in COCO) or strings of
letters, digits and ``-`` (at most 64), since they make the crop names; the ``file_name`` of an
image must be a relative path inside ``<coco-root>/<split>/`` (``--allow-outside-root`` lifts
that); ``bbox``, ``num_keypoints``, ``keypoints``, ``iscrowd`` and ``category_id`` must have
their COCO types. Any other entry, an unreadable image and a crop name used twice are reported
at the end as ``annotation <id> (image <image_id>): <field> ...``, never written, and make the
exit status 1 unless ``--skip-bad`` is given (then they are skipped and counted).
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import sys
from multiprocessing import Pool

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.transforms.loading import (  # noqa: E402
    decode_image_checked, is_complete_jpeg_file)
from liftedcl_mm.utils.fileio import TMP_PREFIX, atomic_write  # noqa: E402

# String ids allowed in crop names: no path separator, no '.', no '_' (the separator of
# '<image_id>_<ann_id>'), so a name can neither leave the crop folder nor be ambiguous.
SAFE_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9-]{0,63}')


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


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value, limit: int = 200) -> str:
    """A value as a report shows it: integers plainly, anything else (strings too) as its repr,
    so that ``1`` and ``'1'`` read differently; shortened to ``limit`` characters."""
    text = str(value) if _integer(value) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _id_key(value):
    """Sort key for ids that may mix integers and strings (integers first)."""
    return (isinstance(value, str), value)


def id_problem(field: str, value):
    """Why ``value`` cannot be the id ``field`` of a crop name, or None when it can.

    Ids are integers (as in COCO) or strings matching :data:`SAFE_ID`; anything else could put a
    path separator, ``..`` or an ambiguous ``_`` into ``<image_id>_<ann_id>.jpg``.
    """
    if _integer(value) or (isinstance(value, str) and SAFE_ID.fullmatch(value)):
        return None
    return (f'{field} {_show(value)} is not an integer or a string of at most 64 letters, '
            'digits and "-"')


def crop_name(image_id, ann_id) -> str:
    """File name ``<image_id>_<ann_id>.jpg`` of a crop; raises ValueError for unsafe ids."""
    for field, value in (('image_id', image_id), ('id', ann_id)):
        problem = id_problem(field, value)
        if problem is not None:
            raise ValueError(problem)
    return f'{image_id}_{ann_id}.jpg'


def file_name_problem(file_name, img_dir: str, allow_outside_root: bool = False):
    """Why an image's ``file_name`` is not a readable path inside ``img_dir``, or None.

    The check is on the path as written (absolute, or leading out through ``..``); symbolic
    links inside the image folder are the user's own setup and are followed.
    """
    if not isinstance(file_name, str) or not file_name or '\0' in file_name:
        return f'file_name {_show(file_name)} is not a non-empty path string'
    if allow_outside_root:
        return None
    hint = f'images are read only from inside {img_dir} (pass --allow-outside-root to allow it)'
    if osp.isabs(file_name):
        return f'file_name {file_name!r} is an absolute path; {hint}'
    norm = osp.normpath(file_name)
    if norm in (os.curdir, os.pardir) or norm.startswith(os.pardir + os.sep):
        return f'file_name {file_name!r} leads outside the image folder; {hint}'
    return None


def check_annotation(ann: dict, img_w: float, img_h: float):
    """Reason why a person annotation is malformed, or None when it is usable.

    The reason starts with the field at fault.
    """
    for key in ('id', 'image_id', 'bbox'):
        if key not in ann:
            return f'missing key "{key}"'
    problem = id_problem('id', ann['id'])
    if problem is not None:
        return problem
    box = ann['bbox']
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(map(_number, box)):
        return f'bbox {_show(box)} is not 4 finite numbers'
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return f'bbox {box!r} has zero or negative size'
    if x >= img_w or y >= img_h or x + w <= 0 or y + h <= 0:
        return f'bbox {box!r} lies outside the {img_w}x{img_h} image'
    nkpt = ann.get('num_keypoints')
    # None (JSON null) reads as absent, as before; integral floats are what some tools write.
    if nkpt is not None and not (_number(nkpt) and nkpt >= 0 and nkpt == int(nkpt)):
        return f'num_keypoints {_show(nkpt)} is not a non-negative integer'
    # Optional 3D truth (synthetic data): carried into the crop records unchanged.
    k3d = ann.get('keypoints_3d')
    if k3d is not None and not (isinstance(k3d, list) and all(
            isinstance(j, list) and len(j) == 3 and all(map(_number, j)) for j in k3d)):
        return f'keypoints_3d {_show(k3d, 80)} is not a list of finite (x, y, z) triples'
    kpts = ann.get('keypoints')
    if kpts is None:
        return None
    if not isinstance(kpts, list):
        return f'keypoints {_show(kpts, 80)} is a {type(kpts).__name__}, not a list'
    if len(kpts) % 3:
        return f'keypoints has {len(kpts)} values, not (x, y, visibility) triples'
    for i, value in enumerate(kpts):
        if not _number(value):
            return f'keypoints[{i}] {_show(value, 80)} is not a finite number'
    return None


def _image_name(img: dict, index: int) -> str:
    name = f'image entry {_show(img["id"])}' if 'id' in img else f'image entry #{index}'
    if isinstance(img.get('file_name'), str):
        name += f' ({img["file_name"][:100]})'
    return name


def _annotation_name(ann: dict) -> str:
    ann_id = _show(ann['id']) if 'id' in ann else '?'
    image_id = _show(ann['image_id']) if 'image_id' in ann else '?'
    return f'annotation {ann_id} (image {image_id})'


def collect_tasks(ann_file: str, img_dir: str, min_keypoints: int, min_box_size: float,
                  allow_outside_root: bool = False):
    """Read the COCO file and group the kept person boxes by image.

    Args:
        ann_file (str): COCO keypoint annotation file.
        img_dir (str): Folder the ``file_name`` of every image is relative to.
        min_keypoints (int): Keep boxes with at least this many labelled keypoints.
        min_box_size (float): Keep boxes whose sides are at least this long.
        allow_outside_root (bool): Accept absolute ``file_name`` and ones leading out of
            ``img_dir``. Defaults to False.

    Returns:
        tuple: (tasks, bad, num_kept) with tasks a list of dicts ``(image, img_path, anns)`` and
        bad a list of ``(name, reason)`` for malformed entries.
    """
    try:
        with open(ann_file, 'r') as f:
            coco = json.load(f)
    except (ValueError, RecursionError) as err:  # bad JSON or UTF-8, absurd nesting
        raise ValueError(f'annotation file {ann_file} is not valid JSON: {err}') from err
    if not isinstance(coco, dict) or not isinstance(coco.get('images'), list) or \
            not isinstance(coco.get('annotations'), list):
        raise ValueError(f'annotation file {ann_file} lacks the COCO "images"/"annotations" lists')
    categories = coco.get('categories', [])
    if not isinstance(categories, list):
        raise ValueError(f'annotation file {ann_file}: "categories" is a '
                         f'{type(categories).__name__}, not a list')
    # Odd category entries are ignored: they only decide which boxes are persons.
    person_ids = {
        c['id'] for c in categories if isinstance(c, dict) and c.get('name') == 'person'
        and isinstance(c.get('id'), (int, str))
    }
    if not person_ids:
        person_ids = {1}  # COCO's person category id

    bad = []
    images = {}
    # Hashable ids of image entries that were reported, to tell their annotations why.
    bad_image_ids = set()
    for index, img in enumerate(coco['images']):
        if not isinstance(img, dict):
            bad.append((f'image entry #{index}', f'is a {type(img).__name__}, not a JSON object'))
            continue
        name = _image_name(img, index)
        missing = [k for k in ('id', 'file_name', 'width', 'height') if k not in img]
        problem = f'missing keys {missing}' if missing else id_problem('id', img['id'])
        if problem is None:
            problem = file_name_problem(img['file_name'], img_dir, allow_outside_root)
        if problem is None and (not (_number(img['width']) and _number(img['height']))
                                or img['width'] <= 0 or img['height'] <= 0):
            problem = (f'width {_show(img["width"])} / height {_show(img["height"])} are not '
                       'positive numbers')
        if problem is None and img['id'] in images:
            problem = f'id {_show(img["id"])} is used by an earlier image entry too'
        if problem is not None:
            bad.append((name, problem))
            if isinstance(img.get('id'), (int, str)):
                bad_image_ids.add(img['id'])
            continue
        images[img['id']] = img

    by_image = {}
    owners = {}  # crop name -> annotation that takes it
    num_kept = 0
    for index, ann in enumerate(coco['annotations']):
        if not isinstance(ann, dict):
            bad.append((f'annotation #{index}', f'is a {type(ann).__name__}, not a JSON object'))
            continue
        name = _annotation_name(ann)
        category = ann.get('category_id', 1)
        if not isinstance(category, (int, str)):
            bad.append((name, f'category_id {_show(category)} is not an integer'))
            continue
        if category not in person_ids:
            # '1' for 1 (or the reverse) is a typing mistake, not another category: say so
            # instead of silently dropping the box.
            twin = str(category) if _integer(category) else \
                int(category) if category.isascii() and category.isdigit() else None
            if twin in person_ids:
                kinds = ('an integer', 'a string') if _integer(category) else \
                    ('a string', 'an integer')
                bad.append((name, f'category_id {_show(category)} is {kinds[0]}, the person '
                            f'category id {_show(twin)} is {kinds[1]}'))
            continue
        crowd = ann.get('iscrowd', 0)
        if crowd not in (0, 1):
            bad.append((name, f'iscrowd {_show(crowd)} is not 0 or 1'))
            continue
        if crowd:
            continue
        if 'image_id' not in ann:
            bad.append((name, 'missing key "image_id"'))
            continue
        image_id = ann['image_id']
        problem = id_problem('image_id', image_id)
        if problem is not None:
            bad.append((name, problem))
            continue
        img = images.get(image_id)
        if img is None:
            twin = str(image_id) if _integer(image_id) else \
                int(image_id) if image_id.isdigit() else None
            if image_id in bad_image_ids:
                reason = (f'refers to a malformed image entry (image_id {_show(image_id)}, '
                          'reported on its own line)')
            elif twin is not None and twin in images:
                kinds = ('an integer', 'a string') if _integer(image_id) else \
                    ('a string', 'an integer')
                reason = (f'refers to an unknown image: image_id {_show(image_id)} is '
                          f'{kinds[0]}, image entry {_show(twin)} has {kinds[1]} id')
            else:
                reason = f'refers to an unknown image (no image entry has id {_show(image_id)})'
            bad.append((name, reason))
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
        crop = crop_name(image_id, ann['id'])
        if crop in owners:
            # Two boxes would share one crop file (a repeated id, or 1 and '1'): the second
            # one would overwrite the first, or be skipped as already done on a resume.
            bad.append((name, f'id: crop name {crop} is already taken by {owners[crop]}'))
            continue
        owners[crop] = name
        by_image.setdefault(image_id, []).append(ann)
        num_kept += 1
    tasks = [
        dict(image=images[i], img_path=osp.join(img_dir, images[i]['file_name']),
             anns=sorted(anns, key=lambda a: _id_key(a['id'])))
        for i, anns in sorted(by_image.items(), key=lambda item: _id_key(item[0]))
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
            # collect_tasks checked the ids already; checking again here keeps any other caller
            # of the worker from writing outside crop_dir.
            try:
                file_name = crop_name(ann['image_id'], ann['id'])
            except ValueError as err:
                bad.append((_annotation_name(ann), str(err)))
                continue
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
                atomic_write(out_path, buf.tobytes())
                written += 1
            records.append(
                dict(img_path=file_name, src_file=image['file_name'], src_width=image['width'],
                     src_height=image['height'], bbox=[float(v) for v in ann['bbox']],
                     ext_bbox=[round(v, 3) for v in ext], ann_id=ann['id'],
                     image_id=ann['image_id']))
            if 'keypoints_3d' in ann:
                records[-1]['keypoints_3d'] = ann['keypoints_3d']
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
    parser.add_argument('--allow-outside-root', action='store_true',
                        help='read images whose file_name is absolute or leads out of '
                        '<coco-root>/<split>/ (refused by default: the annotation file could '
                        'point anywhere)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # The split names output files too: a plain name keeps them inside --out.
    if not args.split or args.split in (os.curdir, os.pardir) or '/' in args.split or \
            os.sep in args.split:
        print(f'error: --split must be a plain folder name like train2017, got {args.split!r}',
              file=sys.stderr)
        return 2
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
                                             args.min_box_size, args.allow_outside_root)
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

    records.sort(key=lambda r: (_id_key(r['image_id']), _id_key(r['ann_id'])))
    ann_out = osp.join(args.out, 'annotations', f'{args.split}.json')
    os.makedirs(osp.dirname(ann_out), exist_ok=True)
    metainfo = dict(
        source=osp.basename(ann_file), split=args.split, crop_size=[args.height, args.width],
        aspect_ratio='height:width = 4:3', min_keypoints=args.min_keypoints,
        min_box_size=args.min_box_size)
    atomic_write(ann_out, json.dumps(dict(metainfo=metainfo, data_list=records)).encode())

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
