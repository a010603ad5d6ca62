"""Sample plausible 3D skeletons (paper App. B) to a ``.npy`` file, optionally with a plot.

Example::

    python tools/misc/sample_skeletons.py --num 10000 --seed 0 --out skel.npy --vis skel.png

The file holds ``(N, 17, 3)`` float32 joints in MMPose's H36M order, each skeleton of unit
Frobenius norm (frame: +X subject's left, +Y forward, +Z up). ``--vis`` draws the first skeletons
from the front, the side and the top so that a human can judge their plausibility.
"""
import argparse
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.skeleton_prior import sample_skeletons, save_npy_atomic  # noqa: E402
from liftedcl_mm.skeleton.h36m import H36M_BONE_COLORS, H36M_BONES  # noqa: E402

# Views as (name, horizontal axis, vertical axis, horizontal sign) of the +X left/+Y fwd/+Z up
# frame: seen from the front the subject's left (+X) is on the viewer's right; the side view looks
# at the subject's left side (forward to the right); the top view looks down with forward up.
_VIEWS = (('front', 0, 2, 1.0), ('side (left)', 1, 2, 1.0), ('top', 0, 1, 1.0))


def plot_skeletons(skeletons: np.ndarray, out_file: str, num: int = 8) -> None:
    """Save a grid: one row per skeleton, columns front / side / top (left side in blue).

    Args:
        skeletons (np.ndarray): ``(N, 17, 3)`` joints.
        out_file (str): PNG file to write.
        num (int): Number of skeletons drawn (the first ones).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    num = min(num, len(skeletons))
    fig, axes = plt.subplots(num, len(_VIEWS), figsize=(2.2 * len(_VIEWS), 2.2 * num),
                             squeeze=False)
    lim = float(np.abs(skeletons[:num]).max()) * 1.05
    for row in range(num):
        skel = skeletons[row]
        for col, (name, hor, ver, sign) in enumerate(_VIEWS):
            ax = axes[row][col]
            for (parent, child), color in zip(H36M_BONES, H36M_BONE_COLORS):
                ax.plot(sign * skel[[parent, child], hor], skel[[parent, child], ver],
                        color=color, lw=2)
            ax.scatter(sign * skel[10, hor], skel[10, ver], s=25, c='k')  # head
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect('equal')
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name)
    fig.tight_layout()
    fig.savefig(out_file, dpi=80)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Sample plausible 3D skeletons (H36M-17).')
    parser.add_argument('--num', type=int, default=10000, help='number of skeletons')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--out', required=True, help='output .npy file')
    parser.add_argument('--vis', default=None, help='optional PNG with front/side/top plots')
    parser.add_argument('--vis-num', type=int, default=8, help='skeletons drawn in --vis')
    parser.add_argument('--no-rotate', action='store_true',
                        help='skip the random rotation about the vertical axis')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.num < 1:
        raise SystemExit(f'--num must be positive, got {args.num}')
    skeletons = sample_skeletons(args.num, args.seed, rotate_vertical=not args.no_rotate)
    save_npy_atomic(args.out, skeletons)
    print(f'wrote {skeletons.shape} float32 skeletons to {args.out}')
    if args.vis:
        plot_skeletons(skeletons, args.vis, args.vis_num)
        print(f'wrote plots to {args.vis}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
