"""Generate the tiny synthetic COCO person-keypoint dataset shipped in ``data/demo``.

Example::

    python tools/misc/make_demo_data.py --out data/demo

Each image shows 1-3 articulated figures (thick coloured limbs, torso polygon, head) drawn from
skeletons of the 3D prior (``sample_skeletons``) projected orthographically, on a procedural
background (gradient, noise, random shapes). Annotations are real: the 17 COCO keypoints
(``x, y, v``; face points placed around the head), ``bbox``, ``area`` (drawn pixels),
``num_keypoints``, ``iscrowd = 0``. Layout::

    <out>/coco/{train2017,val2017}/*.jpg
    <out>/coco/annotations/person_keypoints_{train2017,val2017}.json
    <out>/coco_human/...   (prepare_coco_human_crops.py run on train2017, unless --no-crops)

The output depends only on ``--seed``.
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.skeleton_prior import sample_skeletons  # noqa: E402

COCO_KEYPOINTS = [
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle'
]
# COCO's keypoint skeleton (1-based indices into COCO_KEYPOINTS).
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                 [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6],
                 [5, 7]]
# H36M joint of each COCO body keypoint (indices 5..16 of COCO_KEYPOINTS).
H36M_OF_COCO_BODY = [11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
# Limbs drawn as thick segments: (H36M parent, H36M child, thickness factor).
LIMBS = [(1, 2, 1.0), (2, 3, 0.8), (4, 5, 1.0), (5, 6, 0.8), (11, 12, 0.7), (12, 13, 0.6),
         (14, 15, 0.7), (15, 16, 0.6), (8, 9, 0.5)]


def face_points(skel: np.ndarray) -> np.ndarray:
    """3D nose, eyes and ears ``(5, 3)`` around the head of an H36M skeleton ``(17, 3)``."""
    left = skel[4] - skel[1]
    left[2] = 0.0
    left /= np.linalg.norm(left) + 1e-9
    up = np.array([0.0, 0.0, 1.0])
    # Right-handed body frame: forward = up x right = left x up (left -X, up +Z -> +Y).
    fwd = np.cross(left, up)
    size = np.linalg.norm(skel[10] - skel[9])
    centre = 0.5 * (skel[9] + skel[10])
    return np.stack([
        centre + 0.7 * size * fwd,  # nose
        centre + 0.5 * size * fwd + 0.25 * size * left + 0.15 * size * up,  # left eye
        centre + 0.5 * size * fwd - 0.25 * size * left + 0.15 * size * up,  # right eye
        centre + 0.5 * size * left,  # left ear
        centre - 0.5 * size * left,  # right ear
    ])


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A gradient between two random colours, noise and a few random shapes (BGR uint8)."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    t = (t - t.min()) / (t.max() - t.min() + 1e-9)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    img += rng.normal(0, rng.uniform(3, 15), (h, w, 1))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 7)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(img, center, int(rng.integers(8, 50)), color, -1, cv2.LINE_AA)
        else:
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.rectangle(img, p0, p1, color, -1)
    return img


def draw_person(img: np.ndarray, mask: np.ndarray, pts: np.ndarray, depth: np.ndarray,
                head: tuple, width: float, rng: np.random.Generator) -> None:
    """Draw limbs (far first), torso and head of one figure on ``img`` and on ``mask``."""
    colors = rng.integers(0, 256, (3, 3))
    skin = tuple(int(v) for v in rng.integers(60, 256, 3))
    ipts = np.round(pts).astype(np.int32)
    torso = ipts[[11, 14, 1, 4]]  # shoulders and hips
    items = [(depth[[11, 14, 1, 4]].mean(), 'torso', None)]
    for parent, child, factor in LIMBS:
        items.append((0.5 * (depth[parent] + depth[child]), 'limb', (parent, child, factor)))
    items.append((depth[10], 'head', None))
    # Painter's algorithm: larger depth (farther from the camera) first.
    for _, kind, data in sorted(items, key=lambda it: -it[0]):
        if kind == 'torso':
            color = tuple(int(v) for v in colors[0])
            cv2.fillPoly(img, [torso], color, cv2.LINE_AA)
            cv2.fillPoly(mask, [torso], 255)
        elif kind == 'limb':
            parent, child, factor = data
            color = tuple(int(v) for v in colors[1 if child in (2, 3, 5, 6) else 2])
            thick = max(2, int(round(width * factor)))
            p0, p1 = tuple(int(v) for v in ipts[parent]), tuple(int(v) for v in ipts[child])
            cv2.line(img, p0, p1, color, thick, cv2.LINE_AA)
            cv2.line(mask, p0, p1, 255, thick)
        else:
            center, radius = head
            cv2.circle(img, center, radius, skin, -1, cv2.LINE_AA)
            cv2.circle(mask, center, radius, 255, -1)


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
                 area=float(len(xs)), segmentation=[]))
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
    categories = [
        dict(id=1, name='person', supercategory='person', keypoints=COCO_KEYPOINTS,
             skeleton=COCO_SKELETON)
    ]
    coco = dict(
        info=dict(description=f'LiftedCL synthetic demo ({split}), seed {seed}', version='1.0'),
        licenses=[], images=images, annotations=annotations, categories=categories)
    ann_dir = osp.join(out_root, 'coco', 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    with open(osp.join(ann_dir, f'person_keypoints_{split}.json'), 'w') as f:
        json.dump(coco, f)
    print(f'{split}: {len(images)} images, {len(annotations)} people')


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
