"""Watch the lifting network during training: a picture and two numbers every N iterations."""
import logging
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from liftedcl_mm.registry import HOOKS
from liftedcl_mm.skeleton.stats import bone_ratio_band, plausible
from liftedcl_mm.visualization import (bare_module, compose_grid, face_front, grid_layout,
                                       lift_views, render_skeleton)

# Frame of a lifted panel: it passed the plausibility test, or not.
_PASS_RGB, _FAIL_RGB = (0, 160, 0), (255, 140, 0)
_SKELETON_VIEWS = ('front', 'right side')


def pose_spread(joints: np.ndarray) -> float:
    """How different a batch of poses is: 0 when they are all the same (a collapse).

    Each skeleton is root-centred (joint 0) and divided by its Frobenius norm, as the prior's;
    the spread is the mean over joints of the joint's standard deviation across the batch
    (the root of the summed x, y, z variances). Non-finite skeletons are left out.

    Args:
        joints (np.ndarray): ``(N, J, 3)`` skeletons.

    Returns:
        float: The spread (same units as unit-norm skeletons); NaN with fewer than 2 finite
        skeletons.
    """
    joints = np.asarray(joints, dtype=np.float64)
    joints = joints[np.isfinite(joints).all(axis=(1, 2))]
    if len(joints) < 2:
        return float('nan')
    joints = joints - joints[:, :1]
    norm = np.linalg.norm(joints.reshape(len(joints), -1), axis=1)
    joints = joints / np.where(norm > 0, norm, 1.0)[:, None, None]
    return float(np.sqrt(joints.var(axis=0).sum(axis=-1)).mean())


def draw_lifted_grid(images: np.ndarray,
                     lifted: np.ndarray,
                     prior: np.ndarray,
                     passed: Optional[Sequence[bool]] = None,
                     panel_size: int = 128,
                     caption: Sequence[str] = ()):
    """One row per image: the view, its lifted skeleton from two viewpoints, a prior skeleton.

    Columns: view | lifted front | lifted right side | (gap) | prior front | prior right side.
    Skeletons are turned to face the viewer first (:func:`face_front`); left bones are blue,
    right bones red. A lifted panel is framed green when it passed the plausibility test,
    orange when it did not.

    Args:
        images (np.ndarray): ``(K, H, W, 3)`` uint8 RGB views.
        lifted (np.ndarray): ``(K, 17, 3)`` lifted joints.
        prior (np.ndarray): ``(K, 17, 3)`` prior skeletons.
        passed (Sequence[bool], optional): ``(K,)`` plausibility of each lifted skeleton.
        panel_size (int): Height of every panel (skeleton panels are square).
        caption (Sequence[str]): Lines written above the grid.

    Returns:
        tuple[np.ndarray, dict]: The picture ``(height, width, 3)`` uint8 RGB and its
        :func:`grid_layout` (boxes of every panel; the gap column has no panel).
    """
    import cv2
    num, height, width = images.shape[:3]
    view_w = max(1, int(round(width * panel_size / height)))
    cols = [view_w, panel_size, panel_size, 8, panel_size, panel_size]
    layout = grid_layout(cols, [panel_size] * num, title_lines=1, top_lines=len(caption))

    def skeleton_panels(skeletons):
        finite = np.isfinite(skeletons).all(axis=(1, 2))
        turned = np.where(finite[:, None, None], skeletons, 0.0)
        turned = np.where(finite[:, None, None], face_front(turned), np.nan)
        return [[render_skeleton(s, view, panel_size) for view in _SKELETON_VIEWS]
                for s in turned]

    lifted_panels, prior_panels = skeleton_panels(lifted), skeleton_panels(prior)
    panels, titles = [], []
    for i in range(num):
        view = cv2.resize(images[i], (view_w, panel_size), interpolation=cv2.INTER_LINEAR)
        ok = None if passed is None else bool(passed[i])
        if ok is not None:
            for panel in lifted_panels[i]:
                cv2.rectangle(panel, (0, 0), (panel_size - 1, panel_size - 1),
                              _PASS_RGB if ok else _FAIL_RGB, 3)
        verdict = '' if ok is None else (': plausible' if ok else ': implausible')
        panels.append([view, *lifted_panels[i], None, *prior_panels[i]])
        titles.append([[f'view {i}{verdict}'], ['lifted front'], ['lifted side'], None,
                       ['prior front'], ['prior side']])
    return compose_grid(panels, layout, titles, caption), layout


@HOOKS.register_module()
class LiftedSkeletonVisHook(Hook):
    """Show what the lifting network makes of the batch, and flag a collapse.

    After the first iteration, every ``interval`` iterations and after the last one, on
    rank 0 only:

    - lifts the first query views of the batch again, in inference mode (no gradient, batch
      norm frozen; training is not changed) with the bare model's ``data_preprocessor``,
      ``backbone`` and ``lifting_head``;
    - logs ``lifted_plausible``, the share of the lifted skeletons that pass
      :func:`liftedcl_mm.skeleton.stats.plausible` (bone-length ratios inside the band of the
      model's prior skeletons, no knee bent the wrong way), and ``lifted_spread``
      (:func:`pose_spread`; near 0 when every image gets the same pose), as ``train/...``
      scalars of the message hub: the logger prints and saves them with the losses, and they
      keep their last value between two measurements;
    - sends one picture (:func:`draw_lifted_grid`) to every backend of ``runner.visualizer``
      (``add_image``): ``vis_data/vis_image/<name>_<iter>.png`` with ``LocalVisBackend``, the
      Images tab with ``TensorboardVisBackend``.

    Models without a lifting network (``loss_adv`` off) get a warning once, nothing else.

    Args:
        interval (int): Iterations between two pictures. Defaults to 1000.
        num_images (int): Rows of the picture (the batch's first views). Defaults to 4.
        num_stats (int, optional): Lifted skeletons the scalars are computed on (the batch's
            first ones on rank 0). Defaults to None: the whole batch of rank 0.
        panel_size (int): Height of each panel in pixels. Defaults to 128.
        tolerance (float): Widening of the prior's bone-ratio band. Defaults to 0.1.
        bend_threshold (float): Knees flexed more than this (degrees) count as bent.
            Defaults to 10.
        name (str): Name of the image in the backends. Defaults to 'lifted_skeletons'.
        at_start (bool): Also after the first iteration: the baseline of the random (or
            pre-trained) encoder, and the scalars are then in every log line, so log tools
            that take the keys from the first line find them. Defaults to True.
        seed (int): Seed of the choice of prior skeletons shown (with the iteration).
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 1000,
                 num_images: int = 4,
                 num_stats: Optional[int] = None,
                 panel_size: int = 128,
                 tolerance: float = 0.1,
                 bend_threshold: float = 10.0,
                 name: str = 'lifted_skeletons',
                 at_start: bool = True,
                 seed: int = 0) -> None:
        # --cfg-options may hand over strings: name the key instead of failing later
        for key, value, low in (('interval', interval, 1), ('num_images', num_images, 1),
                                ('panel_size', panel_size, 16), ('num_stats', num_stats, 2)):
            if key == 'num_stats' and value is None:
                continue
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f'LiftedSkeletonVisHook.{key} must be an integer >= {low}, '
                                 f'got {value!r}')
        self.interval = int(interval)
        self.num_images = int(num_images)
        self.num_stats = None if num_stats is None else int(num_stats)
        self.panel_size = int(panel_size)
        self.tolerance = float(tolerance)
        self.bend_threshold = float(bend_threshold)
        self.name = str(name)
        self.at_start = bool(at_start)
        self.seed = int(seed)
        self._enabled = True
        self._band = self._prior = None
        self.prior_spread = float('nan')

    def before_train(self, runner) -> None:
        model = bare_module(runner.model)
        prior = getattr(model, 'prior_skeletons', None)
        if getattr(model, 'lifting_head', None) is None or prior is None:
            self._enabled = False
            print_log('LiftedSkeletonVisHook: the model has no lifting network (loss_adv is '
                      'off); the hook does nothing', logger='current', level=logging.WARNING)
            return
        self._prior = prior.detach().float().cpu().numpy()
        self._band = bone_ratio_band(self._prior, self.tolerance)
        self.prior_spread = pose_spread(self._prior)
        print_log(f'LiftedSkeletonVisHook: every {self.interval} iterations; lifted_spread of '
                  f'the prior skeletons: {self.prior_spread:.3f} (a collapse drives it to 0)',
                  logger='current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._enabled or not is_main_process():
            return
        if not (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner) or (self.at_start and runner.iter == 0)):
            return
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
        # View 0 is the query view (docs/CONTRACTS.md "Inputs"); a lone tensor is one view.
        views = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
        if not isinstance(views, torch.Tensor) or views.dim() != 4 or views.shape[1] != 3:
            self._enabled = False
            print_log('LiftedSkeletonVisHook: the batch has no "inputs" list of (N, 3, H, W) '
                      'views; the hook does nothing', logger='current', level=logging.WARNING)
            return
        self.visualize(runner, views, runner.iter + 1)

    def visualize(self, runner, views, step: int) -> np.ndarray:
        """Lift ``views`` (N, 3, H, W) uint8, log the scalars and add the picture at ``step``.

        Returns:
            np.ndarray: The picture (RGB).
        """
        num = views.shape[0] if self.num_stats is None else min(views.shape[0], self.num_stats)
        joints, images = lift_views(runner.model, views[:num])
        passed = plausible(joints, self._band, bend_threshold=self.bend_threshold)
        spread = pose_spread(joints)
        hub = runner.message_hub
        hub.update_scalar('train/lifted_plausible', float(passed.mean()))
        hub.update_scalar('train/lifted_spread', spread)
        shown = min(self.num_images, num)
        rng = np.random.default_rng([self.seed, step])
        prior = self._prior[rng.choice(len(self._prior), shown, replace=len(self._prior) < shown)]
        caption = [f'iter {step}: {int(passed.sum())}/{num} lifted skeletons plausible, '
                   f'spread {spread:.3f} (prior {self.prior_spread:.3f})',
                   'frame green: plausible, orange: not; left bones blue, right red']
        image, _ = draw_lifted_grid(images[:shown], joints[:shown], prior, passed[:shown],
                                    self.panel_size, caption)
        runner.visualizer.add_image(self.name, image, step=step)
        return image
