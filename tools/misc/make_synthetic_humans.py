"""Generate synthetic people with 3D ground truth: COCO person keypoints, images and crops.

Example::

    python tools/misc/make_synthetic_humans.py --out data/synthetic_humans --workers 2
    python tools/misc/make_synthetic_humans.py --out data/synthetic_humans_authors \
        --poses ../shared/reference/authors_prior/norm_joints.pt --up=-y

The demo renderer (``make_demo_data.py``) generalised: 1-3 people per image, each an H36M
skeleton (from ``--poses`` or from our sampler) seen by a random perspective camera (uniform yaw
about every body, elevation -10..30 degrees, jittered distance and focal length), drawn far-to-near
with thick limbs and per-person colours on a procedural background with distractor shapes and
noise (``liftedcl_mm/datasets/synthetic_humans.py``). Layout::

    <out>/coco/{train2017,val2017}/*.jpg
    <out>/coco/annotations/person_keypoints_{train2017,val2017}.json
    <out>/coco_human/{crops,annotations}/...   (prepare_coco_human_crops.py, both splits)

Each image entry also holds its ``camera`` (``focal`` in pixels, ``principal`` point); each
annotation holds ``keypoints_3d`` (17 x [x, y, z], root-relative camera-frame H36M joints in
metres, OpenCV axes: x right, y down, z forward) and ``root_cam`` (the root in the camera frame),
so ``focal * (p + root_cam)[:2] / (p + root_cam)[2] + principal`` gives the COCO body keypoints.
``area`` is the area of the figure's convex hull (``silhouette_area``: the thin-limb pixel count
made OKS, hence AP, ~3x too strict).
Keypoints are in the drawing's pixel coordinates (as the demo). The output depends only on
``--seed`` (not on ``--workers``).
"""
import argparse
import os
import os.path as osp
import sys
from multiprocessing import Pool

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from liftedcl_mm.datasets.skeleton_prior import (  # noqa: E402
    load_skeleton_file, sample_skeletons)
from liftedcl_mm.datasets.synthetic_humans import (  # noqa: E402
    SHARED_PALETTE, render_people, silhouette_area, write_coco_keypoints)

SPLITS = (('train2017', 1, 0), ('val2017', 1000001, 1))  # name, first image id, seed offset


def _round(values, ndigits: int) -> list:
    return [round(float(v), ndigits) for v in np.asarray(values).ravel()]


def render_image(task: tuple):
    """Render and write one image; return its COCO image entry and annotations (no ids yet)."""
    img_dir, image_id, skels, seed, h, w, quality, palette = task
    img, people, camera = render_people(np.random.default_rng(seed), skels, h, w, palette)
    file_name = f'{image_id:012d}.jpg'
    cv2.imwrite(osp.join(img_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    anns = []
    for person in people:
        ys, xs = np.nonzero(person['mask'])
        coco = person['coco']
        if len(xs) == 0 or not (coco[:, 2] > 0).any():
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        kpts = np.concatenate([np.round(coco[:, :2], 2), coco[:, 2:]], 1)
        joints = person['joints_cam']
        anns.append(
            dict(image_id=image_id, category_id=1, iscrowd=0,
                 keypoints=[float(v) if k % 3 < 2 else int(v) for k, v in
                            enumerate(kpts.ravel())],
                 num_keypoints=int((coco[:, 2] > 0).sum()),
                 bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                 area=silhouette_area(person['mask']), segmentation=[],
                 keypoints_3d=np.round(joints - joints[0], 5).tolist(),
                 root_cam=_round(joints[0], 5)))
    entry = dict(id=image_id, file_name=file_name, width=w, height=h,
                 camera=dict(focal=round(camera['focal'], 4),
                             principal=_round(camera['principal'], 4)))
    return entry, anns


def make_split(out_root: str, split: str, first_id: int, num_images: int, poses, seed: int,
               h: int, w: int, quality: int, workers: int, progress: bool,
               palette=None) -> int:
    """Write one split; return the number of people annotated."""
    rng = np.random.default_rng(seed)
    img_dir = osp.join(out_root, 'coco', split)
    os.makedirs(img_dir, exist_ok=True)
    counts = rng.integers(1, 4, num_images)
    if poses is None:
        skels = sample_skeletons(int(counts.sum()), seed=seed + 1)
    else:
        skels = poses[rng.integers(0, len(poses), int(counts.sum()))]
    starts = np.concatenate([[0], np.cumsum(counts)])
    tasks = [(img_dir, first_id + i, skels[starts[i]:starts[i + 1]], [seed, i], h, w, quality,
              palette) for i in range(num_images)]
    from tqdm import tqdm
    bar = tqdm(total=num_images, unit='img', desc=f'rendering {split}', disable=not progress)
    results = []
    if workers > 0:
        with Pool(workers, initializer=cv2.setNumThreads, initargs=(1, )) as pool:
            for res in pool.imap(render_image, tasks, chunksize=16):
                results.append(res)
                bar.update()
    else:
        for task in tasks:
            results.append(render_image(task))
            bar.update()
    bar.close()
    images, annotations = [], []
    for entry, anns in results:
        images.append(entry)
        for ann in anns:
            annotations.append(dict(id=first_id * 10 + len(annotations) + 1, **ann))
    write_coco_keypoints(out_root, split, f'LiftedCL synthetic humans ({split}), seed {seed}',
                         images, annotations)
    return len(annotations)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate synthetic people with 3D truth.')
    parser.add_argument('--out', default='data/synthetic_humans', help='output root')
    parser.add_argument('--num-train', type=int, default=4000,
                        help='train images (1-3 people each: ~8000 people)')
    parser.add_argument('--num-val', type=int, default=500,
                        help='val images (~1000 people)')
    parser.add_argument('--poses', default=None,
                        help='file of (N, 17, 3) skeletons (load_skeleton_file); default: '
                        'our sampler')
    parser.add_argument('--up', default='+z', help="the --poses file's up axis, e.g. -y")
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--quality', type=int, default=90, help='JPEG quality of the images')
    parser.add_argument('--crop-height', type=int, default=128,
                        help='crop height (4:3; small views need no 256x192 crops)')
    parser.add_argument('--crop-width', type=int, default=96)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--palette', choices=('random', 'shared'), default='random',
                        help='random: colours per person; shared: one palette for everybody '
                        '(no colour code to tell people apart)')
    parser.add_argument('--workers', type=int, default=2,
                        help='worker processes (0: this process)')
    parser.add_argument('--no-crops', action='store_true', help='skip the crop tool')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    poses = None if args.poses is None else load_skeleton_file(args.poses, args.up)
    for (split, first_id, offset), num in zip(SPLITS, (args.num_train, args.num_val)):
        make_split(args.out, split, first_id, num, poses, args.seed * 1000 + offset, args.height,
                   args.width, args.quality, args.workers, not args.no_progress,
                   SHARED_PALETTE if args.palette == 'shared' else None)
    if args.no_crops:
        return 0
    sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
    from prepare_coco_human_crops import main as prepare_crops
    for split, _, _ in SPLITS:
        argv = ['--coco-root', osp.join(args.out, 'coco'), '--split', split, '--out',
                osp.join(args.out, 'coco_human'), '--workers', str(args.workers), '--height',
                str(args.crop_height), '--width', str(args.crop_width), '--quality', '90']
        if args.no_progress:
            argv.append('--no-progress')
        status = prepare_crops(argv)
        if status:
            return status
    return 0


if __name__ == '__main__':
    sys.exit(main())
