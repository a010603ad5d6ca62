"""Benchmark sampling of prior skeletons: vectorised ``sample_skeletons`` vs a per-skeleton loop.

``sample_skeletons(10000)`` (random draws included) is timed as the median of 5 runs. The
per-skeleton reference builds skeletons one at a time with the plain-Python
``_sample_skeleton_reference`` of ``liftedcl_mm/datasets/skeleton_prior.py`` (a kinematic
chain: one matrix product per bone), each after drawing its own random numbers from the same
distributions (``draw_skeleton_params`` for one skeleton, as ``sample_skeletons`` includes its
draws); it is timed on
500 skeletons (median of 5 runs) and extrapolated linearly to 10 000 (its cost is the same
for every skeleton).
The loop's build alone (parameters drawn beforehand) is reported too, and both
implementations build the same skeletons from the same parameters (max abs difference).

    python tools/benchmarks/bench_skeleton_prior.py [--quick] [--json OUT]
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCHMARK = 'skeleton_prior'
FULL = dict(num=10000, loop_num=500, repeats=5)
QUICK = dict(num=1000, loop_num=20, repeats=1)
MODULE = 'liftedcl_mm.datasets.skeleton_prior'


def _components():
    what = 'the skeleton prior sampler (helper B)'
    for name in ('sample_skeletons', 'draw_skeleton_params', 'build_skeletons',
                 'H36M_ROTATION_LIMITS'):
        benchlib.require(MODULE, name, what)
    mod = benchlib.require(MODULE)
    for name in ('sample_skeleton_reference', '_sample_skeleton_reference'):
        if hasattr(mod, name):
            return mod, getattr(mod, name)
    raise benchlib.MissingComponent(f'missing component: the per-skeleton loop reference '
                                    f'(`_sample_skeleton_reference`) in `{MODULE}` (helper B)')


def main() -> None:
    args = benchlib.parse_args(benchlib.base_parser(__doc__.splitlines()[0]))
    started = time.time()
    cfg = QUICK if args.quick else FULL
    mod, reference = _components()
    import numpy as np

    mod.sample_skeletons(100, seed=1)  # first-call overheads (imports, caches) excluded
    times = [benchlib.timed(lambda: mod.sample_skeletons(cfg['num'], seed=i))
             for i in range(cfg['repeats'])]
    ours = benchlib.median(times)

    rng = np.random.default_rng(0)
    loop_num = cfg['loop_num']

    def sampling_loop():  # what a per-skeleton sampler does: draw, then build
        for _ in range(loop_num):
            one = mod.draw_skeleton_params(1, rng)  # truncated normals inside the limits
            reference(one['alphas'][0], one['angles'][0], float(one['yaw'][0]))

    params = mod.draw_skeleton_params(loop_num, rng)
    loop_out = []

    def build_loop():
        for i in range(loop_num):
            loop_out.append(reference(params['alphas'][i], params['angles'][i],
                                      float(params['yaw'][i])))

    loop_s = benchlib.median([benchlib.timed(sampling_loop) for _ in range(cfg['repeats'])])
    build_loop_s = benchlib.timed(build_loop)
    loop_extrapolated = loop_s * cfg['num'] / loop_num
    build_extrapolated = build_loop_s * cfg['num'] / loop_num
    batched = mod.build_skeletons(params['alphas'], params['angles'], params['yaw'])
    max_diff = float(np.abs(np.stack(loop_out) - batched).max())

    figures = [
        benchlib.figure(f"sample {cfg['num']:,} prior skeletons", ours, 's',
                        target_on='value', target_op='<', threshold=0.5),
        benchlib.figure(f"sampling speed-up vs per-skeleton loop ({cfg['num']:,})", ours, 's',
                        peer='per-skeleton loop', peer_value=loop_extrapolated,
                        ratio=loop_extrapolated / ours, ratio_def='peer / ours (speed-up)',
                        target_op='>=', threshold=50.0,
                        note=f'loop (per-skeleton draws + `_sample_skeleton_reference`) timed '
                        f"on {loop_num} skeletons ({loop_s:.3f} s, median of {cfg['repeats']}) "
                        f"and extrapolated linearly to "
                        f"{cfg['num']:,}; its build alone: {build_extrapolated:.3f} s "
                        f'({build_extrapolated / ours:.1f}x); loop vs batched max abs diff '
                        f'{max_diff:.1e}'),
    ]
    details = dict(config=cfg, seconds=times, loop_seconds=loop_s,
                   loop_build_only_seconds=build_loop_s,
                   loop_vs_batched_max_abs_diff=max_diff)
    benchlib.finish(BENCHMARK, args, figures, details, started)


if __name__ == '__main__':
    benchlib.main_guard(main)
