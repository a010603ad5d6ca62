"""Benchmark the cost of ``LiftedSkeletonVisHook``: training with and without it, same run.

Tiny config (``configs/liftedcl_tiny_demo.py`` with its default hook interval, demo data,
the real Runner with every default hook, logging every iteration as the config does): one
training run is cut into blocks of ``interval`` iterations, each ending on an iteration where
the hook fires; the hook is switched on in every other block (order A B B A ..., so a linear
drift of the machine cancels) and every block's wall time, data loading included, is taken.
On a shared machine the blocks vary by more than the hook costs, so the figure is the median
block without the hook plus the hook's own median time per picture (timed inside the same run,
in the blocks where it is on), over the median block without it; the raw ratio of the block
medians with / without is printed beside it. The sampler is ``InfiniteSampler``: the default
one restarts the demo's 79 crops every 19 iterations with a 2-second pause, which would land in
some blocks and not others.

ResNet-50 (``configs/liftedcl_r50_coco.py``, CPU batch 8 of 256x256 random views, as
``bench_iteration.py``): the hook's cost per picture (it lifts the whole batch) over the time
of ``interval`` (1000) training iterations, each measured alone (an A/B run of 1000-iteration
blocks is out of reach on a CPU).

    python tools/benchmarks/bench_vis_hook.py [--quick] [--json OUT] [--threads N]
"""
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCHMARK = 'vis_hook'
TINY_CONFIG = benchlib.REPO / 'configs' / 'liftedcl_tiny_demo.py'
FULL = dict(pairs=4, warmup_blocks=1, r50=dict(batch=8, size=256, iters=3, calls=3))
QUICK = dict(pairs=1, warmup_blocks=1, interval=2,
             r50=dict(batch=2, size=64, iters=1, calls=1))
LIMIT = 1.02  # the budget: at most 2% slower at the default interval


def hook_cfg(cfg) -> dict:
    """The ``LiftedSkeletonVisHook`` entry of a config's ``custom_hooks``."""
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') in ('LiftedSkeletonVisHook', 'liftedcl_mm.LiftedSkeletonVisHook'):
            return dict(hook)
    raise benchlib.MissingComponent('the config has no LiftedSkeletonVisHook in custom_hooks')


def measure_tiny(setting: dict, work_dir: str) -> dict:
    """Block times of one tiny training run with the hook on in every other block."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from liftedcl_mm.registry import HOOKS
    from liftedcl_mm.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(TINY_CONFIG))
    vis_cfg = hook_cfg(cfg)
    if 'interval' in setting:
        vis_cfg['interval'] = setting['interval']
    interval = vis_cfg.get('interval', 1000)
    vis_hook = HOOKS.build(vis_cfg)
    cfg.custom_hooks = []
    # After the warm-up, A B B A A B B A ...: the hook is on in every other block.
    measured = 4 * ((setting['pairs'] + 1) // 2)
    on = [True] * setting['warmup_blocks'] + [(i % 4) in (1, 2) for i in range(measured)]
    blocks = len(on)
    cfg.train_cfg.max_iters = blocks * interval
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=10**9)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'

    class Switch(Hook):
        """Runs the vis hook in the blocks where it is on; times each call."""
        priority = vis_hook.priority

        def __init__(self):
            self.calls = []

        def before_train(self, runner):
            vis_hook.before_train(runner)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if on[runner.iter // interval]:
                start = time.perf_counter()
                vis_hook.after_train_iter(runner, batch_idx, data_batch, outputs)
                if (runner.iter + 1) % interval == 0:
                    self.calls.append(time.perf_counter() - start)

    class BlockTimer(Hook):
        """Wall time of every block of ``interval`` iterations, hooks and data included."""
        priority = 'LOWEST'

        def __init__(self):
            self.ends = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if (runner.iter + 1) % interval == 0:
                self.ends.append(time.perf_counter())

    runner = Runner.from_cfg(cfg)
    switch, timer = Switch(), BlockTimer()
    runner.register_hook(switch)
    runner.register_hook(timer)
    runner.train()
    # Block k (k >= 1) lasts from the end of block k - 1 to its own end; block 0 has no start.
    durations = [b - a for a, b in zip(timer.ends, timer.ends[1:])]
    timed = list(zip(durations, on[1:]))[setting['warmup_blocks'] - 1:]
    with_hook = [d for d, flag in timed if flag]
    without = [d for d, flag in timed if not flag]
    return dict(interval=interval, blocks=blocks, on=on, durations=durations,
                with_hook=with_hook, without=without, hook_calls=switch.calls,
                num_pictures=len(switch.calls))


def measure_r50(setting: dict, work_dir: str) -> dict:
    """ResNet-50: seconds per training iteration and per hook picture (stand-in runner)."""
    import torch
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.visualization import Visualizer

    import bench_iteration
    from liftedcl_mm.registry import HOOKS
    cfg = dict(batch=setting['batch'], size=setting['size'], warmup=1, iters=setting['iters'],
               amp=False)
    trainee = bench_iteration.Trainee('LiftedCL', cfg)
    vis_cfg = hook_cfg(Config.fromfile(str(bench_iteration.config_path('LiftedCL'))))
    vis_hook = HOOKS.build(vis_cfg)

    class StandIn:
        """What the hook reads of a Runner."""
        model = trainee.model
        message_hub = MessageHub.get_instance('bench_vis_hook')
        visualizer = Visualizer.get_instance(
            'bench_vis_hook', vis_backends=[dict(type='LocalVisBackend')], save_dir=work_dir)

    runner = StandIn()
    vis_hook.before_train(runner)
    trainee.step()  # warm-up
    iteration = [trainee.step() for _ in range(setting['iters'])]
    views = trainee.batches[0]['inputs'][0]
    vis_hook.visualize(runner, views, 0)  # warm-up
    calls = []
    for i in range(setting['calls']):
        start = time.perf_counter()
        vis_hook.visualize(runner, views, i + 1)
        calls.append(time.perf_counter() - start)
    return dict(interval=vis_hook.interval, iteration_s=iteration, hook_calls=calls,
                batch=setting['batch'], size=setting['size'], threads=torch.get_num_threads())


def worker(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    benchlib.quiet_mmengine()
    setting = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp:
        if args.worker[0] == 'tiny':
            result = measure_tiny(setting, tmp)
        else:
            result = measure_r50(setting['r50'], tmp)
    benchlib.write_json(args.worker_out, result)


def main() -> None:
    parser = benchlib.base_parser(__doc__.splitlines()[0])
    args = benchlib.parse_args(parser)
    if args.worker is not None:
        worker(args)
        return
    started = time.time()
    benchlib.require('liftedcl_mm.engine.hooks.lifted_skeleton_vis_hook',
                     'LiftedSkeletonVisHook', 'the lifted-skeleton hook')
    benchlib.require_file(TINY_CONFIG, 'the tiny demo config')
    extra = ['--threads', str(args.threads)] + (['--quick'] if args.quick else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for job in ('tiny', 'r50'):
            results[job] = benchlib.run_worker(Path(__file__), [job, *extra],
                                               Path(tmp) / f'{job}.json', timeout=600,
                                               what=f'vis hook worker ({job})')
    tiny, r50 = results['tiny'], results['r50']
    # Medians: a block that another process stalls for seconds must not decide the figure.
    block_off = benchlib.median(tiny['without'])
    block_on = benchlib.median(tiny['with_hook'])
    call = benchlib.median(tiny['hook_calls'])
    # Blocks differ by more than the hook costs on a shared machine, so the figure adds the
    # hook's own time (timed inside the run, in the blocks where it is on) to the blocks
    # without it; the raw comparison of the blocks is reported beside it.
    per_iter_off = block_off / tiny['interval']
    per_iter_on = (block_off + call) / tiny['interval']
    raw_ratio = block_on / block_off
    lo, hi = (sorted(tiny['without'])[i] for i in (0, -1))
    r50_iter = benchlib.median(r50['iteration_s'])
    r50_call = benchlib.median(r50['hook_calls'])
    r50_ratio = 1.0 + r50_call / (r50['interval'] * r50_iter)
    print(f"tiny: {per_iter_off:.4f} s/iter without the hook, one picture {call * 1e3:.1f} ms "
          f"every {tiny['interval']} iterations: x{per_iter_on / per_iter_off:.4f}; blocks "
          f'with / without the hook (medians): x{raw_ratio:.3f}')
    print(f'R50: {r50_iter:.3f} s/iter, one picture {r50_call:.3f} s, interval '
          f"{r50['interval']}")
    figures = [
        benchlib.figure(
            f"training time with the hook (tiny config, interval {tiny['interval']})",
            per_iter_on, 's/iter', peer='without the hook', peer_value=per_iter_off,
            ratio=per_iter_on / per_iter_off, ratio_def='with / without', target_op='<=',
            threshold=LIMIT,
            note=(f"one training run cut into blocks of {tiny['interval']} iterations, the "
                  'hook on in every other block (A B B A); without: median wall time of '
                  f"{len(tiny['without'])} blocks with the hook off (data loading and every "
                  f'other hook included; they ranged {lo:.2f}-{hi:.2f} s); with: that plus '
                  f"the hook's median time per picture in the blocks where it was on "
                  f"({call * 1e3:.1f} ms, {len(tiny['hook_calls'])} pictures). Raw medians "
                  f'of the blocks with / without the hook: {raw_ratio:.3f}x (the blocks '
                  'vary more than the hook costs)')),
        benchlib.figure(
            f"training time with the hook (R50, batch {r50['batch']}, {r50['size']}x"
            f"{r50['size']}, interval {r50['interval']}), estimated",
            r50_iter * r50_ratio, 's/iter', peer='without the hook', peer_value=r50_iter,
            ratio=r50_ratio, ratio_def='with / without', target_op='<=', threshold=LIMIT,
            note=(f'1 + (one picture, {r50_call:.2f} s: lifting the batch of '
                  f"{r50['batch']} again, drawing, writing the PNG) / ({r50['interval']} x "
                  f'the median training iteration, {r50_iter:.2f} s), each measured alone')),
    ]
    benchlib.finish(BENCHMARK, args, figures, results, started)


if __name__ == '__main__':
    benchlib.main_guard(main)
