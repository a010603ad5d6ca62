"""Sample plausible 3D skeletons (paper App. B), or convert a skeleton file; check and plot them.

Examples::

    # sample 10 000 skeletons, print their statistics, plot the first ones
    python tools/misc/sample_skeletons.py --num 10000 --seed 0 --out skel.npy --stats --vis skel.png
    # the authors' released prior (vertical -Y), converted into our frame
    python tools/misc/sample_skeletons.py --from-file norm_joints.pt --up=-y --out authors.npy \\
        --stats

The ``.npy`` holds ``(N, 17, 3)`` float32 joints in MMPose's H36M order, each skeleton with the
root at the origin and unit Frobenius norm, in our right-handed frame (the subject faces +Y, +Z
up, subject's right +X). ``--stats`` prints the statistics of ``liftedcl_mm/skeleton/stats.py``
against their targets (PASS / FAIL). ``--vis`` draws the first skeletons from the front, the
right side and the top, each turned about the vertical to face +Y first (left bones blue, right
bones red; from the front the subject's left is on the viewer's right).
"""
import argparse
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from liftedcl_mm.datasets.skeleton_prior import (load_skeleton_file,  # noqa: E402
                                                 sample_skeletons, save_npy_atomic)
from liftedcl_mm.skeleton import (check_prior_statistics, format_statistics,  # noqa: E402
                                  prior_statistics)
# The views, the turn to the front and the projection are shared with every skeleton plot.
from liftedcl_mm.visualization.skeleton import (VIEWS, face_front,  # noqa: E402,F401
                                                plot_skeleton_2d, project)


def plot_skeletons(skeletons: np.ndarray, out_file: str, num: int = 8, turn_to_front: bool = True,
                   return_fig: bool = False):
    """Save a grid: one row per skeleton, columns front / right side / top.

    Args:
        skeletons (np.ndarray): ``(N, 17, 3)`` joints, +Z up.
        out_file (str): PNG file to write.
        num (int): Number of skeletons drawn (the first ones).
        turn_to_front (bool): Turn each skeleton to face +Y first (:func:`face_front`).
        return_fig (bool): Return the matplotlib figure (open) instead of closing it.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    num = min(num, len(skeletons))
    shown = face_front(skeletons[:num]) if turn_to_front else skeletons[:num]
    fig, axes = plt.subplots(num, len(VIEWS), figsize=(2.2 * len(VIEWS), 2.2 * num),
                             squeeze=False)
    lim = float(np.abs(shown).max()) * 1.05
    for row in range(num):
        for col, view in enumerate(VIEWS):
            ax = axes[row][col]
            plot_skeleton_2d(ax, project(shown[row], view))
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect('equal')
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(view[0])
    fig.tight_layout()
    fig.savefig(out_file, dpi=80)
    if return_fig:
        return fig
    plt.close(fig)
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Sample plausible 3D skeletons (H36M-17) or convert a skeleton file.')
    parser.add_argument('--num', type=int, default=10000, help='number of skeletons sampled')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--uniform', action='store_true',
                        help="draw every angle uniformly within its limits (the paper's "
                        'literal sampling) instead of the natural-pose distributions')
    parser.add_argument('--no-rotate', action='store_true',
                        help='skip the random rotation about the vertical axis')
    parser.add_argument('--from-file', default=None,
                        help='load skeletons (.pt/.pth/.npy/.npz, (N, 17, 3)) instead of sampling')
    parser.add_argument('--up', default='+z',
                        help="up axis of --from-file: '+z', '-y', ... (write --up=-y)")
    parser.add_argument('--key', default=None, help='array of a .npz / dict file')
    parser.add_argument('--out', default=None, help='output .npy file')
    parser.add_argument('--stats', action='store_true',
                        help='print the statistics of the skeletons against their targets')
    parser.add_argument('--vis', default=None, help='PNG with front / side / top plots')
    parser.add_argument('--vis-num', type=int, default=8, help='skeletons drawn in --vis')
    args = parser.parse_args(argv)
    if not (args.out or args.stats or args.vis):
        parser.error('nothing to do: give --out, --stats and/or --vis')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_file:
        try:
            skeletons = load_skeleton_file(args.from_file, args.up, args.key)
        except ValueError as err:
            raise SystemExit(f'error: {err}')
        source = f'{args.from_file} (up {args.up}): {len(skeletons)} skeletons'
    else:
        if args.num < 1:
            raise SystemExit(f'--num must be positive, got {args.num}')
        kwargs = dict(distributions='uniform') if args.uniform else {}
        skeletons = sample_skeletons(args.num, args.seed, rotate_vertical=not args.no_rotate,
                                     **kwargs)
        source = (f'sampled{" uniformly" if args.uniform else ""}: {args.num} skeletons, '
                  f'seed {args.seed}')
    if args.out:
        save_npy_atomic(args.out, skeletons)
        print(f'wrote {skeletons.shape} float32 skeletons to {args.out}')
    if args.stats:
        rows = check_prior_statistics(prior_statistics(skeletons, up_axis='+z'))
        print(format_statistics(rows, title=source))
    if args.vis:
        plot_skeletons(skeletons, args.vis, args.vis_num)
        print(f'wrote plots to {args.vis}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
