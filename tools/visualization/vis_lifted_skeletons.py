"""Lift images to 3D skeletons with a LiftedCL checkpoint and save a grid (paper Fig. 5).

Example::

    python tools/visualization/vis_lifted_skeletons.py \
        work_dirs/liftedcl_tiny_demo/iter_20.pth configs/liftedcl_tiny_demo.py \
        data/demo/coco_human/crops/train2017/*.jpg --out lifted.png

Each row shows the input (resized to the config's view size, normalised like the model's
data preprocessor) and the skeleton the lifting network predicts for it, drawn with the
H36M-17 bones (left side blue, right side red, centre black).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mmcv  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

from liftedcl_mm.registry import MODELS  # noqa: E402
from liftedcl_mm.utils import load_checkpoint_safely, register_all_modules  # noqa: E402
from liftedcl_mm.visualization import lift_views, plot_skeleton_3d  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Visualise skeletons lifted by LiftedCL')
    parser.add_argument('checkpoint', help='LiftedCL checkpoint (.pth)')
    parser.add_argument('config', help='config the checkpoint was trained with')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out', default='lifted_skeletons.png', help='output PNG')
    parser.add_argument('--size', type=int, default=None,
                        help='view size; default: the config\'s view_scale (else 256)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    return parser.parse_args(argv)


def build_model(config: str, checkpoint: str, device: str = 'cpu') -> torch.nn.Module:
    """Build the LiftedCL of ``config`` and load ``checkpoint`` (safe loading, no pickles)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    register_all_modules()
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    if getattr(model, 'lifting_head', None) is None:
        raise ValueError(f'{config}: the model has no lifting network (loss_adv is switched '
                         'off), nothing to visualise')
    ckpt = load_checkpoint_safely(checkpoint)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{checkpoint}: no state_dict found')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    needed = [k for k in model.state_dict()
              if k.startswith(('backbone.', 'lifting_head.'))]
    missing = [k for k in needed if k not in state]
    if missing:
        raise ValueError(f'{checkpoint} lacks {len(missing)} backbone/lifting-head weights, '
                         f'e.g. {missing[:3]}; is it a LiftedCL checkpoint of {config}?')
    model.load_state_dict(state, strict=False)
    return model.to(device).eval(), cfg


def load_images(paths: List[str], size: int) -> np.ndarray:
    """Read images (BGR, as the training pipeline) resized to (size, size): (N, H, W, 3)."""
    images = []
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f'image not found: {path}')
        img = mmcv.imread(path)
        if img is None:
            raise ValueError(f'cannot decode image: {path}')
        images.append(mmcv.imresize(img, (size, size)))
    return np.stack(images)


def lift(model: torch.nn.Module, images_bgr: np.ndarray) -> np.ndarray:
    """Lifted joints (N, J, 3) of BGR uint8 images (N, H, W, 3)."""
    device = next(model.parameters()).device
    inputs = torch.from_numpy(images_bgr).permute(0, 3, 1, 2).contiguous().to(device)
    return lift_views(model, inputs)[0]


def draw_grid(images_bgr: np.ndarray, joints: np.ndarray, out: str) -> None:
    """Save rows of ``image | 3D skeleton`` to ``out`` (PNG)."""
    num = len(images_bgr)
    fig = plt.figure(figsize=(6, 3 * num))
    for i in range(num):
        ax = fig.add_subplot(num, 2, 2 * i + 1)
        ax.imshow(images_bgr[i][..., ::-1])
        ax.axis('off')
        ax3d = fig.add_subplot(num, 2, 2 * i + 2, projection='3d')
        plot_skeleton_3d(ax3d, joints[i])
    fig.subplots_adjust(left=0.02, right=0.98, top=0.98, bottom=0.02, wspace=0.05)
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    model, cfg = build_model(args.config, args.checkpoint, args.device)
    size = args.size or int(cfg.get('view_scale', 256))
    images = load_images(args.images, size)
    joints = lift(model, images)
    draw_grid(images, joints, args.out)
    print(f'saved {len(images)} lifted skeletons to {args.out}')
    return args.out


if __name__ == '__main__':
    main()
