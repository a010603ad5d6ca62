"""Drawing of H36M-17 skeletons: fixed views, matplotlib axes and fast raster panels.

One place for every skeleton plot (``tools/misc/sample_skeletons.py``,
``tools/visualization/vis_lifted_skeletons.py``, :class:`LiftedSkeletonVisHook`). All of them
read the frame of ``liftedcl_mm/skeleton/h36m.py`` (the subject faces +Y, +Z up, the subject's
right +X) and colour the bones with ``H36M_BONE_COLORS``: left side blue, right side red, trunk
black. Seen from the front, the subject's left is on the viewer's right.
"""
import functools
from typing import Optional, Sequence, Tuple

import numpy as np

from liftedcl_mm.skeleton import H36M_BONE_COLORS, H36M_BONES, H36M_JOINT_NAMES

# Views as (name, image-right axis, image-up axis) in our frame (facing +Y, +Z up, right +X):
# front: a camera at +Y looking along -Y, its right is -X (the subject's left); right side: a
# camera at +X looking along -X, its right is +Y (the subject faces right); top: looking down
# along -Z with the subject's front up in the image, its right is +X.
VIEWS = (
    ('front', (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    ('right side', (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    ('top', (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
)
HEAD = H36M_JOINT_NAMES.index('head')
_RIGHT_HIP, _LEFT_HIP = H36M_JOINT_NAMES.index('right_hip'), H36M_JOINT_NAMES.index('left_hip')


def view_by_name(name: str):
    """The entry of :data:`VIEWS` called ``name`` ('front', 'right side' or 'top')."""
    for view in VIEWS:
        if view[0] == name:
            return view
    raise ValueError(f'unknown view {name!r}; choose from {[v[0] for v in VIEWS]}')


def face_front(skeletons: np.ndarray) -> np.ndarray:
    """Turn each skeleton about +Z so that its hip line (left -> right hip) points to +X.

    The subject then faces +Y (right-handed), so the fixed views show its front, right side
    and top whatever yaw it had.

    Args:
        skeletons (np.ndarray): ``(N, 17, 3)`` joints, +Z up.

    Returns:
        np.ndarray: ``(N, 17, 3)`` float32.
    """
    from liftedcl_mm.datasets.skeleton_prior import rotate_about_vertical
    skeletons = np.asarray(skeletons)
    right = skeletons[:, _RIGHT_HIP] - skeletons[:, _LEFT_HIP]
    yaw = np.degrees(np.arctan2(right[:, 1], right[:, 0]))
    return rotate_about_vertical(skeletons, -yaw)


def project(skeleton: np.ndarray, view) -> np.ndarray:
    """Image coordinates ``(..., 17, 2)`` (x to the viewer's right, y up) in a view of ``VIEWS``.

    Args:
        skeleton (np.ndarray): ``(..., 17, 3)`` joints.
        view (tuple): An entry of :data:`VIEWS`.
    """
    _, right, up = view
    return np.stack([skeleton @ np.asarray(right), skeleton @ np.asarray(up)], -1)


# ----------------------------------------------------------------------------- matplotlib
def plot_skeleton_2d(ax, points: np.ndarray, lw: float = 2.0) -> None:
    """Draw one projected skeleton on a matplotlib 2D axis: bones in ``H36M_BONES`` order.

    Args:
        ax: A matplotlib ``Axes``.
        points (np.ndarray): ``(17, 2)`` image coordinates (x right, y up), from :func:`project`.
        lw (float): Bone line width.
    """
    for (parent, child), color in zip(H36M_BONES, H36M_BONE_COLORS):
        ax.plot(points[[parent, child], 0], points[[parent, child], 1], color=color, lw=lw)
    ax.scatter(points[HEAD, 0], points[HEAD, 1], s=25, c='k')


def plot_skeleton_3d(ax3d, pose: np.ndarray) -> None:
    """Draw one skeleton on a matplotlib 3D axis, seen from the front, equal scale on all axes.

    Args:
        ax3d: A matplotlib ``Axes3D`` (``projection='3d'``).
        pose (np.ndarray): ``(17, 3)`` joints in our frame.
    """
    for (parent, child), color in zip(H36M_BONES, H36M_BONE_COLORS):
        seg = pose[[parent, child]]
        ax3d.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color, lw=2)
    ax3d.scatter(pose[:, 0], pose[:, 1], pose[:, 2], s=6, color='gray')
    centre = (pose.max(0) + pose.min(0)) / 2
    radius = max(float(np.ptp(pose, axis=0).max()) / 2, 1e-6)
    for setter, c in zip((ax3d.set_xlim, ax3d.set_ylim, ax3d.set_zlim), centre):
        setter(c - radius, c + radius)
    ax3d.set_xticklabels([])
    ax3d.set_yticklabels([])
    ax3d.set_zticklabels([])
    # Camera at +Y (azim 90) looking back along -Y: a skeleton facing +Y is seen from the
    # front, its left on the viewer's right (the front view of VIEWS, in perspective).
    ax3d.view_init(elev=10, azim=90)


# ----------------------------------------------------------------------------- raster (cv2)
@functools.lru_cache(maxsize=None)
def bone_colors_rgb() -> Tuple[Tuple[int, int, int], ...]:
    """``H36M_BONE_COLORS`` as uint8 RGB triples (matplotlib names resolved once)."""
    from matplotlib.colors import to_rgb
    return tuple(tuple(int(round(255 * c)) for c in to_rgb(name)) for name in H36M_BONE_COLORS)


def render_skeleton(joints: np.ndarray,
                    view,
                    size: int = 128,
                    extent: Optional[float] = None,
                    background: Sequence[int] = (255, 255, 255),
                    thickness: int = 2) -> np.ndarray:
    """Rasterise one skeleton in one view of :data:`VIEWS` (about 0.1 ms: fit for training hooks).

    The same projection and colours as the matplotlib plots, drawn with OpenCV. The root
    joint is at the panel centre; ``extent`` (half the panel side, in skeleton units) defaults
    to the skeleton's largest root distance plus 10%, so every skeleton fills its panel.
    A skeleton with non-finite joints gives a panel with a grey cross.

    Args:
        joints (np.ndarray): ``(17, 3)`` joints in our frame.
        view (tuple | str): An entry of :data:`VIEWS` or its name.
        size (int): Side of the square panel in pixels.
        extent (float, optional): Half the panel side in skeleton units.
        background (Sequence[int]): RGB of the panel.
        thickness (int): Bone line width in pixels.

    Returns:
        np.ndarray: ``(size, size, 3)`` uint8 RGB.
    """
    import cv2
    view = view_by_name(view) if isinstance(view, str) else view
    panel = np.empty((size, size, 3), np.uint8)
    panel[:] = np.asarray(background, np.uint8)
    joints = np.asarray(joints, dtype=np.float64)
    if not np.isfinite(joints).all():
        cv2.line(panel, (0, 0), (size - 1, size - 1), (160, 160, 160), 1)
        cv2.line(panel, (0, size - 1), (size - 1, 0), (160, 160, 160), 1)
        return panel
    points = project(joints - joints[0], view)
    if extent is None:
        extent = 1.1 * float(np.abs(points).max())
    scale = (size / 2 - thickness) / max(extent, 1e-12)
    # Image rows grow downwards: y up becomes -row. Sub-pixel positions (shift=4 bits).
    pix = np.empty_like(points)
    pix[:, 0] = size / 2 + points[:, 0] * scale
    pix[:, 1] = size / 2 - points[:, 1] * scale
    fixed = np.round(np.clip(pix, -4 * size, 5 * size) * 16).astype(np.int64)
    for (parent, child), color in zip(H36M_BONES, bone_colors_rgb()):
        cv2.line(panel, tuple(int(v) for v in fixed[parent]), tuple(int(v) for v in fixed[child]),
                 color, thickness, cv2.LINE_AA, shift=4)
    cv2.circle(panel, tuple(int(v) for v in fixed[HEAD]), 16 * (thickness + 1), (0, 0, 0), -1,
               cv2.LINE_AA, shift=4)
    return panel
