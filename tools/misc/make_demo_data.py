"""Generate the tiny synthetic COCO person-keypoint dataset shipped in ``data/demo``.

Example::

    python tools/misc/make_demo_data.py --out data/demo

Each image shows 1-3 articulated figures (thick coloured limbs, torso polygon, head) drawn from
skeletons of the 3D prior (``sample_skeletons``) projected orthographically, on a procedural
background (gradient, noise, random shapes). Annotations are real: the 17 COCO keypoints
(``x, y, v``; face points placed around the head), ``bbox``, ``area`` (convex hull of the drawn
figure, ``silhouette_area``), ``num_keypoints``, ``iscrowd = 0``. Layout::

    <out>/coco/{train2017,val2017}/*.jpg
    <out>/coco/annotations/person_keypoints_{train2017,val2017}.json
    <out>/coco_human/...   (prepare_coco_human_crops.py run on train2017, unless --no-crops)

The output depends only on ``--seed``.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.skeleton_prior import sample_skeletons  # noqa: E402
from liftedcl_mm.datasets.synthetic_humans import (  # noqa: E402
    H36M_OF_COCO_BODY, background, draw_person, face_points, silhouette_area,
    write_coco_keypoints)


def make_image(rng: np.random.Generator, skels: np.ndarray, h: int, w: int, image_id: int,
               next_ann_id: int):
    """One image with ``len(skels)`` figures and their COCO annotations."""
    img = background(rng, h, w)
    anns = []
    people = []
    for skel in skels:
        height_px = rng.uniform(0.45, 0.85) * h
        zs = skel[:, 2]
        scale = height_px / (zs.max() - zs.min() + 1e-9)
        # Orthographic camera at +Y looking along -Y (in front of a +Y-facing subject), image
        # up +Z: its right is -X, so image u = -X, v = -Z, depth = -Y. A proper view, never a
        # mirror: the subject's left (-X) shows on the image's right when it faces the camera.
        cx = rng.uniform(0.2, 0.8) * w
        cy = rng.uniform(0.45, 0.6) * h
        face = face_points(skel)
        pts3d = np.concatenate([skel, face])
        u = cx - scale * (pts3d[:, 0] - skel[0, 0])
        v = cy - scale * (pts3d[:, 2] - 0.5 * (zs.max() + zs.min()))
        people.append((np.stack([u, v], 1), -scale * pts3d[:, 1], scale, skel))
    # Farther figures (larger mean depth) first, so nearer ones occlude them.
    for pts, depth, scale, skel in sorted(people, key=lambda p: -p[1][:17].mean()):
        mask = np.zeros((h, w), np.uint8)
        head_r = max(3, int(round(0.45 * scale * np.linalg.norm(skel[10] - skel[9]))))
        head_c = tuple(int(v) for v in np.round(0.5 * (pts[9] + pts[10])))
        width = max(3.0, 0.09 * scale * 0.5)
        draw_person(img, mask, pts[:17], depth[:17], (head_c, head_r), width, rng)
        coco_xy = np.concatenate([pts[17:22], pts[H36M_OF_COCO_BODY]])
        coco_depth = np.concatenate([depth[17:22], depth[H36M_OF_COCO_BODY]])
        head_depth = 0.5 * (depth[9] + depth[10])
        kpts = []
        for k, (x, y) in enumerate(coco_xy):
            if not (0 <= x < w and 0 <= y < h):
                kpts += [0.0, 0.0, 0]
                continue
            # Face points on the far side of the head are labelled but not visible.
            vis = 1 if k < 5 and coco_depth[k] > head_depth else 2
            kpts += [round(float(x), 2), round(float(y), 2), vis]
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        anns.append(
            dict(id=next_ann_id + len(anns), image_id=image_id, category_id=1, iscrowd=0,
                 keypoints=kpts, num_keypoints=int(sum(1 for v in kpts[2::3] if v > 0)),
                 bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                 area=silhouette_area(mask), segmentation=[]))
    return img, anns


def make_split(out_root: str, split: str, num_images: int, first_id: int, seed: int, h: int,
               w: int, quality: int) -> None:
    rng = np.random.default_rng(seed)
    img_dir = osp.join(out_root, 'coco', split)
    os.makedirs(img_dir, exist_ok=True)
    counts = rng.integers(1, 4, num_images)
    skels = sample_skeletons(int(counts.sum()), seed=seed + 1)
    images, annotations = [], []
    used = 0
    for i in range(num_images):
        image_id = first_id + i
        img, anns = make_image(rng, skels[used:used + counts[i]], h, w, image_id,
                               first_id * 10 + len(annotations) + 1)
        used += counts[i]
        file_name = f'{image_id:012d}.jpg'
        cv2.imwrite(osp.join(img_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        images.append(dict(id=image_id, file_name=file_name, width=w, height=h))
        annotations += anns
    write_coco_keypoints(out_root, split, f'LiftedCL synthetic demo ({split}), seed {seed}',
                         images, annotations)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate the synthetic demo COCO dataset.')
    parser.add_argument('--out', default='data/demo', help='output root')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--quality', type=int, default=85, help='JPEG quality of the images')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-crops', action='store_true',
                        help='do not run prepare_coco_human_crops.py on train2017')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    make_split(args.out, 'train2017', args.num_train, 1, args.seed, args.height, args.width,
               args.quality)
    make_split(args.out, 'val2017', args.num_val, 1001, args.seed + 100, args.height,
               args.width, args.quality)
    if not args.no_crops:
        sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                                    'dataset_converters'))
        from prepare_coco_human_crops import main as prepare_crops
        return prepare_crops([
            '--coco-root', osp.join(args.out, 'coco'), '--split', 'train2017', '--out',
            osp.join(args.out, 'coco_human'), '--workers', '0', '--quality', '90',
            '--no-progress'
        ])
    return 0


if __name__ == '__main__':
    sys.exit(main())
