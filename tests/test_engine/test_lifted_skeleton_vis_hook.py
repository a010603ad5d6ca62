"""LiftedSkeletonVisHook in a real (tiny, 2-iteration) training run, its scalars and picture,
the TensorBoard switch of the configs, and MMPretrain's log tools on the run's json log."""
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from liftedcl_mm.engine.hooks import LiftedSkeletonVisHook, draw_lifted_grid, pose_spread
from liftedcl_mm.engine.hooks import lifted_skeleton_vis_hook as hook_module
from liftedcl_mm.utils import register_all_modules
from liftedcl_mm.visualization import count_panels, grid_layout

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')
# The one line of configs/_base_/default_runtime.py that switches TensorBoard on in a config.
TENSORBOARD_LINE = ("visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), "
                    "dict(type='TensorboardVisBackend')])")


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """2 iterations of the tiny config, hook every iteration (3 pictures are not needed: 2)."""
    tmp = tmp_path_factory.mktemp('vis_hook_run')
    lines = [f'_base_ = [{TINY!r}]',
             "custom_hooks = [dict(type='LiftedSkeletonVisHook', interval=1, num_images=3)]",
             'train_cfg = dict(max_iters=2)',
             'default_hooks = dict(checkpoint=dict(interval=100))',
             "log_level = 'WARNING'"]
    if _has_tensorboard():
        lines.append(TENSORBOARD_LINE)
    (tmp / 'cfg.py').write_text('\n'.join(lines) + '\n')
    register_all_modules()
    cfg = Config.fromfile(str(tmp / 'cfg.py'))
    cfg.work_dir = str(tmp / 'work')
    torch.set_num_threads(1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    (vis_dir, ) = glob.glob(osp.join(cfg.work_dir, '*', 'vis_data'))
    return runner, vis_dir


def test_pictures_have_the_expected_panels(tiny_run):
    runner, vis_dir = tiny_run
    files = sorted(os.listdir(osp.join(vis_dir, 'vis_image')))
    assert files == ['lifted_skeletons_1.png', 'lifted_skeletons_2.png']
    import cv2
    image = cv2.imread(osp.join(vis_dir, 'vis_image', files[-1]))[..., ::-1]
    # 64x64 views shown at 128: view | lifted x2 | gap | prior x2, 3 rows, a 2-line caption.
    layout = grid_layout([128, 128, 128, 8, 128, 128], [128] * 3, title_lines=1, top_lines=2)
    assert image.shape == (layout['height'], layout['width'], 3)
    assert count_panels(image) == [5, 5, 5]
    for row in layout['boxes']:
        for col, (x0, y0, x1, y1) in enumerate(row):
            if col == 3:
                continue  # the gap
            panel = image[y0:y1, x0:x1].astype(int)
            assert panel.std() > 5, (col, 'blank panel')
            if col >= 1:  # skeleton panels: white background with bones of both sides
                blue = (np.abs(panel - [31, 119, 180]).sum(-1) < 30).sum()
                red = (np.abs(panel - [214, 39, 40]).sum(-1) < 30).sum()
                assert blue > 20 and red > 20, col


def test_scalars_reach_the_log(tiny_run):
    runner, vis_dir = tiny_run
    scalars = runner.message_hub.log_scalars
    plausible = scalars['train/lifted_plausible'].current()
    spread = scalars['train/lifted_spread'].current()
    assert 0.0 <= plausible <= 1.0 and math.isfinite(spread) and spread > 0
    (log_file, ) = glob.glob(osp.join(vis_dir, '2*.json'))
    lines = [json.loads(line) for line in open(log_file)]
    assert [line['step'] for line in lines] == [1, 2]
    for line in lines:  # in every line from the first (the hook also runs after iteration 1)
        assert 'lifted_plausible' in line and 'lifted_spread' in line
        assert line['lr'] == line['generator.lr']  # the name MMPretrain's log tools read
    assert lines[-1]['lifted_spread'] == pytest.approx(spread)


def test_tensorboard_event_file_gets_picture_and_scalars(tiny_run):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    runner, vis_dir = tiny_run
    assert any(type(b).__name__ == 'TensorboardVisBackend'
               for b in runner.visualizer._vis_backends.values())
    events = glob.glob(osp.join(vis_dir, 'events.out.tfevents.*'))
    assert events, os.listdir(vis_dir)
    acc = EventAccumulator(vis_dir, size_guidance={'images': 0, 'scalars': 0})
    acc.Reload()
    assert 'lifted_skeletons' in acc.Tags()['images']
    images = acc.Images('lifted_skeletons')
    assert [im.step for im in images] == [1, 2]
    import cv2
    png = cv2.imdecode(np.frombuffer(images[-1].encoded_image_string, np.uint8), cv2.IMREAD_COLOR)
    assert count_panels(png[..., ::-1]) == [5, 5, 5]
    for tag in ('lifted_plausible', 'lifted_spread', 'loss'):
        values = acc.Scalars(tag)
        assert [v.step for v in values] == [1, 2], tag
    assert acc.Scalars('lifted_spread')[-1].value == pytest.approx(
        runner.message_hub.log_scalars['train/lifted_spread'].current(), rel=1e-5)


def test_default_runtime_line_switches_tensorboard_on():
    text = open(osp.join(ROOT, 'configs', '_base_', 'default_runtime.py')).read()
    assert TENSORBOARD_LINE in text  # documented there, word for word
    off = Config.fromstring(text, '.py')
    assert [b['type'] for b in off.visualizer.vis_backends] == ['LocalVisBackend']
    on = Config.fromstring(text.replace("    # dict(type='TensorboardVisBackend'),",
                                        "    dict(type='TensorboardVisBackend'),"), '.py')
    assert [b['type'] for b in on.visualizer.vis_backends] == ['LocalVisBackend',
                                                               'TensorboardVisBackend']


def test_mmpretrain_analyze_logs_reads_our_log(tiny_run, tmp_path):
    """The command the README gives: MMPretrain's tool, through MIM, on our json log."""
    _, vis_dir = tiny_run
    (log_file, ) = glob.glob(osp.join(vis_dir, '2*.json'))
    out = tmp_path / 'curves.png'
    env = dict(os.environ, MPLBACKEND='Agg')
    proc = subprocess.run([sys.executable, '-m', 'mim', 'run', 'mmpretrain', 'analyze_logs',
                           'plot_curve', log_file, '--keys', 'loss', 'lifted_plausible',
                           'lifted_spread', '--out', str(out)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    import cv2
    curves = cv2.imread(str(out))
    assert curves is not None and curves.shape[0] > 200 and curves.std() > 5
    proc = subprocess.run([sys.executable, '-m', 'mim', 'run', 'mmpretrain', 'analyze_logs',
                           'cal_train_time', log_file], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'average iter time' in proc.stdout


# ----------------------------------------------------------------------------- units
class _Runner:
    """What the hook reads of a Runner."""

    def __init__(self, model, iteration=0, max_iters=10):
        from mmengine.logging import MessageHub
        self.model = model
        self.iter = iteration
        self.max_iters = max_iters
        self.message_hub = MessageHub.get_instance(f'vis_hook_unit_{id(self)}')
        self.visualizer = mock.MagicMock()


def _tiny_model(**overrides):
    from liftedcl_mm.registry import MODELS
    register_all_modules()
    cfg = Config.fromfile(TINY).model
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _batch(num=4):
    views = torch.randint(0, 256, (num, 3, 64, 64), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    return dict(inputs=[views, views.clone()], data_samples=[])


def test_hook_fires_at_start_interval_and_end_only_on_rank_0():
    runner = _Runner(_tiny_model(), max_iters=7)
    hook = LiftedSkeletonVisHook(interval=3, num_images=2)
    hook.before_train(runner)
    fired = []
    for it in range(7):
        runner.iter = it
        runner.visualizer.add_image.reset_mock()
        hook.after_train_iter(runner, it, _batch(), None)
        if runner.visualizer.add_image.called:
            name, image = runner.visualizer.add_image.call_args[0][:2]
            assert name == 'lifted_skeletons' and count_panels(image) == [5, 5]
            fired.append(runner.visualizer.add_image.call_args[1]['step'])
    assert fired == [1, 3, 6, 7]  # first, every 3rd, last
    with mock.patch.object(hook_module, 'is_main_process', return_value=False):
        runner.visualizer.add_image.reset_mock()
        runner.iter = 5
        hook.after_train_iter(runner, 5, _batch(), None)
        assert not runner.visualizer.add_image.called


def test_without_lifting_network_warns_once_and_does_nothing():
    runner = _Runner(_tiny_model(loss_adv=dict(type='LSGANLoss', loss_weight=0.0)))
    hook = LiftedSkeletonVisHook(interval=1)
    with mock.patch.object(hook_module, 'print_log') as log:
        hook.before_train(runner)
        for it in range(3):
            runner.iter = it
            hook.after_train_iter(runner, it, _batch(), None)
    assert log.call_count == 1 and 'no lifting network' in log.call_args[0][0]
    assert not runner.visualizer.add_image.called
    assert 'train/lifted_plausible' not in runner.message_hub.log_scalars


def test_arguments_are_checked():
    with pytest.raises(ValueError, match='interval'):
        LiftedSkeletonVisHook(interval='10')
    with pytest.raises(ValueError, match='num_stats'):
        LiftedSkeletonVisHook(num_stats=1)
    with pytest.raises(ValueError, match='num_images'):
        LiftedSkeletonVisHook(num_images=0)


def test_pose_spread_sees_a_collapse():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    prior = sample_skeletons(64, seed=0)
    assert pose_spread(prior) > 0.05
    collapsed = np.repeat(prior[:1], 64, axis=0) * np.linspace(0.5, 2, 64)[:, None, None]
    assert pose_spread(collapsed) == pytest.approx(0, abs=1e-6)  # scale is normalised away
    assert math.isnan(pose_spread(prior[:1]))
    with_nan = prior[:3].copy()
    with_nan[0, 2, 1] = np.nan
    assert pose_spread(with_nan) == pytest.approx(pose_spread(prior[1:3]))


def test_draw_lifted_grid_layout_for_non_square_views():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    skeletons = sample_skeletons(2, seed=1)
    images = np.full((2, 40, 30, 3), 200, np.uint8)
    image, layout = draw_lifted_grid(images, skeletons, skeletons[::-1], [True, False],
                                     panel_size=64, caption=['one line'])
    assert layout['boxes'][0, 0, 2] - layout['boxes'][0, 0, 0] == 48  # 30 x 64 / 40
    assert image.shape == (layout['height'], layout['width'], 3)
    assert count_panels(image) == [5, 5]
    # Frames: green around the plausible row's lifted panels, orange around the other's.
    x0, y0 = layout['boxes'][0, 1, :2]
    assert tuple(image[y0 + 1, x0 + 10]) == (0, 160, 0)
    x0, y0 = layout['boxes'][1, 1, :2]
    assert tuple(image[y0 + 1, x0 + 10]) == (255, 140, 0)
