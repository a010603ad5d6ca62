"""Drawing of synthetic people: shared by ``make_demo_data.py`` and ``make_synthetic_humans.py``.

Figures are H36M-17 skeletons (frame of docs/CONTRACTS.md) already projected to the image: thick
coloured limbs, a torso polygon and a head, drawn far-to-near (painter's algorithm) on a
procedural background. COCO keypoints follow from the H36M joints plus five face points.
"""
import json
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np

COCO_KEYPOINTS = [
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle'
]
# COCO's keypoint skeleton (1-based indices into COCO_KEYPOINTS).
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                 [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6],
                 [5, 7]]
# One set of colours for everybody (torso, legs, arms, head; BGR): with it, telling two people
# apart takes shape and pose, not a per-person colour code (``make_synthetic_humans.py
# --palette shared``).
SHARED_PALETTE = ((90, 60, 160), (150, 110, 40), (60, 150, 200), (140, 170, 210))
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
                head: tuple, width: float, rng: np.random.Generator,
                palette: Optional[Sequence] = None) -> None:
    """Draw limbs (far first), torso and head of one figure on ``img`` and on ``mask``.

    ``palette``: BGR colours of torso, legs, arms and head (e.g. :data:`SHARED_PALETTE`);
    None draws them at random per person (the default; ``rng`` is then consumed).
    """
    if palette is None:
        colors = rng.integers(0, 256, (3, 3))
        skin = tuple(int(v) for v in rng.integers(60, 256, 3))
    else:
        colors, skin = np.asarray(palette[:3]), tuple(int(v) for v in palette[3])
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


def add_distractors(rng: np.random.Generator, img: np.ndarray) -> None:
    """Limb-like thick strokes and ellipses, so that bodies are not the only elongated shapes."""
    h, w = img.shape[:2]
    for _ in range(rng.integers(1, 5)):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        p0 = rng.uniform(0, 1, 2) * (w, h)
        p1 = p0 + rng.normal(0, 0.15, 2) * (w, h)
        if rng.random() < 0.5:
            cv2.line(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), color,
                     int(rng.integers(2, 10)), cv2.LINE_AA)
        else:
            axes = (int(rng.integers(4, 30)), int(rng.integers(4, 30)))
            cv2.ellipse(img, tuple(int(v) for v in p0), axes, float(rng.uniform(0, 180)), 0, 360,
                        color, -1, cv2.LINE_AA)


def look_at_camera(elevation: float, distance: float, target_height: float = 0.9):
    """World-to-camera rotation ``(3, 3)`` and centre ``(3,)`` of a camera looking along +Y.

    The camera (OpenCV frame: x right, y down, z forward) looks at ``(0, 0, target_height)``
    from ``distance`` metres, tilted down by ``elevation`` radians (negative: looking up). Its
    right is the world's +X, so a subject facing -Y (towards the camera) shows its left (-X) on
    the image's right: a proper view, never a mirror.
    """
    sin, cos = np.sin(elevation), np.cos(elevation)
    forward = np.array([0.0, cos, -sin])
    down = np.array([0.0, -sin, -cos])
    rot = np.stack([np.cross(down, forward), down, forward])  # rows: right, down, forward
    centre = np.array([0.0, 0.0, target_height]) - distance * forward
    return rot, centre


def yaw_matrix(angle: float) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``angle`` radians about +Z (up)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def render_people(rng: np.random.Generator, skels: np.ndarray, h: int, w: int,
                  palette: Optional[Sequence] = None):
    """Draw ``skels`` seen by one random perspective camera; return image, people and camera.

    The camera has an elevation in [-10, 30] degrees and a jittered distance and focal length;
    every person gets a uniform yaw (so the camera's yaw about each body is uniform), a height
    of 1.5-1.9 m and a place on the ground. Bodies are drawn far-to-near.

    Args:
        rng (np.random.Generator): The only source of randomness.
        skels (np.ndarray): ``(P, 17, 3)`` H36M skeletons in our body frame (any scale).
        h (int): Image height.
        w (int): Image width.
        palette (Sequence, optional): Colours of every person (see :func:`draw_person`);
            None for random colours per person.

    Returns:
        tuple: ``img`` (h, w, 3) BGR uint8; a list of per-person dicts, nearest drawn last, with
        ``coco`` (17, 3) COCO keypoints ``x, y, v`` (v = 0 outside the image, 1 occluded by a
        nearer person or a face point behind the head, 2 visible), ``joints_cam`` (17, 3)
        camera-frame H36M joints in metres, ``mask`` (h, w) uint8; and ``camera`` (dict with
        ``focal`` and ``principal``).
    """
    img = background(rng, h, w)
    add_distractors(rng, img)
    focal = 1.2 * h * rng.uniform(0.9, 1.1)
    principal = np.array([w / 2.0, h / 2.0])
    rot, centre = look_at_camera(np.deg2rad(rng.uniform(-10.0, 30.0)), rng.uniform(3.5, 5.5))
    people = []
    for skel in skels:
        zs = skel[:, 2]
        body = skel * rng.uniform(1.5, 1.9) / (zs.max() - zs.min() + 1e-9)
        body = body @ yaw_matrix(rng.uniform(0, 2 * np.pi)).T
        pts = np.concatenate([body, face_points(body)])
        ground = np.array([0.0, rng.uniform(-1.0, 2.5), 0.0])
        depth = (ground - centre) @ rot[2]
        ground[0] = rng.uniform(-0.4, 0.4) * w / focal * depth  # root lands inside the image
        pts = pts - [pts[0, 0], pts[0, 1], pts[:17, 2].min()] + ground
        cam = (pts - centre) @ rot.T
        uv = focal * cam[:, :2] / cam[:, 2:] + principal
        people.append(dict(uv=uv, cam=cam))
    people.sort(key=lambda p: -p['cam'][:17, 2].mean())  # painter's algorithm: far first
    for person in people:
        uv, cam = person['uv'], person['cam']
        person['mask'] = np.zeros((h, w), np.uint8)
        head_c = tuple(int(v) for v in np.round(0.5 * (uv[9] + uv[10])))
        head_size = np.linalg.norm(cam[10] - cam[9])
        head_r = max(2, int(round(focal * 0.45 * head_size / cam[9:11, 2].mean())))
        width = max(2.0, focal * 0.11 / cam[0, 2])
        draw_person(img, person['mask'], uv[:17], cam[:17, 2], (head_c, head_r), width, rng,
                    palette)
    # Occlusion by nearer people, known only once everybody is drawn.
    covered = np.zeros((h, w), bool)
    for person in reversed(people):
        uv, cam = person['uv'], person['cam']
        xy = np.concatenate([uv[17:22], uv[H36M_OF_COCO_BODY]])
        z = np.concatenate([cam[17:22, 2], cam[H36M_OF_COCO_BODY, 2]])
        head_z = cam[9:11, 2].mean()
        coco = np.zeros((17, 3))
        for k, (x, y) in enumerate(xy):
            if 0 <= x < w and 0 <= y < h:
                hidden = covered[int(y), int(x)] or (k < 5 and z[k] > head_z)
                coco[k] = (x, y, 1 if hidden else 2)
        person['coco'], person['joints_cam'] = coco, cam[:17]
        covered |= person['mask'] > 0
    return img, people, dict(focal=float(focal), principal=principal.tolist())


def silhouette_area(mask: np.ndarray) -> float:
    """COCO ``area`` of a drawn figure: the area of its silhouette's convex hull, in px².

    COCO's ``area`` (the person's mask area) sets the scale of OKS, so CocoMetric's AP. The
    figures are drawn with thin limbs: their pixel count is ~3x smaller than a solid body's
    and would demand 2-4 px keypoint accuracy of a 100 px person (AP ~0 whatever the model).
    The hull covers the body as a filled silhouette, closer to a real person's mask.

    Args:
        mask (np.ndarray): (H, W) mask of the figure, nonzero where drawn.

    Returns:
        float: Hull area (0 for an empty mask; the pixel count when the hull is degenerate).
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        return float(len(xs))
    # pixel squares, not centres: a 1 px wide line still has an area
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    hull = cv2.convexHull(corners.astype(np.int32))
    return float(max(cv2.contourArea(hull), len(xs)))


def write_coco_keypoints(out_root: str, split: str, description: str, images: list,
                         annotations: list) -> str:
    """Write ``<out_root>/coco/annotations/person_keypoints_<split>.json`` (one person category).

    Args:
        out_root (str): Dataset root.
        split (str): e.g. ``'train2017'``.
        description (str): ``info.description`` of the file.
        images (list[dict]): COCO image entries.
        annotations (list[dict]): COCO person annotations with 17 keypoints.

    Returns:
        str: Path of the written file.
    """
    categories = [dict(id=1, name='person', supercategory='person', keypoints=COCO_KEYPOINTS,
                       skeleton=COCO_SKELETON)]
    coco = dict(info=dict(description=description, version='1.0'), licenses=[], images=images,
                annotations=annotations, categories=categories)
    ann_dir = osp.join(out_root, 'coco', 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    path = osp.join(ann_dir, f'person_keypoints_{split}.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    print(f'{split}: {len(images)} images, {len(annotations)} people')
    return path
