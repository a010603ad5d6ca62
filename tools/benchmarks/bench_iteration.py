"""Benchmark one training iteration: LiftedCL vs MMPretrain's MoCo v2 and DenseCL.

Each model is built from its own config (``configs/liftedcl_r50_coco.py``; MMPretrain's
``mocov2_resnet50_8xb32-coslr-200e_in1k.py`` and ``densecl_resnet50_8xb32-coslr-200e_in1k.py``)
with the same ResNet-50, batch and queue length (16384), and driven through its own
``train_step`` with the optimizer wrapper(s) its config describes, built by
``build_optim_wrapper`` as MMEngine's Runner does (LiftedCL: an ``OptimWrapperDict`` with
``generator`` and ``discriminator``; both steps are timed). Inputs are random uint8 views
plus ``DataSample`` s with ``view_bboxes``/``view_flips`` of random overlapping crops; they go
through each model's ``SelfSupDataPreprocessor`` inside ``train_step``.

CPU: batch 8, 256x256 views, ``torch.set_num_threads(2)``, peak memory = peak RSS (VmHWM)
of the worker process. CUDA (chosen automatically): batch 64 with AMP
(``AmpOptimWrapper``), peak memory = ``torch.cuda.max_memory_allocated``. Peak memory: every
model trains a few iterations in its own subprocess (peaks do not mix). Time: one subprocess
builds all models, warms each up, then times their iterations interleaved (A B C A B C ...),
so that every model sees the same machine load; median per model.

    python tools/benchmarks/bench_iteration.py [--quick] [--json OUT] [--profile]
"""
import copy
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCHMARK = 'iteration'
MODELS_ORDER = ('LiftedCL', 'DenseCL', 'MoCoV2')
QUEUE_LEN = 16384
ORI_SHAPE = (256, 192)  # (H, W) of a prepared COCO person crop
FULL_CPU = dict(batch=8, size=256, warmup=3, iters=10, amp=False)
FULL_CUDA = dict(batch=64, size=256, warmup=5, iters=20, amp=True)
QUICK = dict(batch=2, size=64, warmup=1, iters=2, amp=False)
# Every learning rate is multiplied by this (same for all models): from random weights on
# noise images, LiftedCL's adversarial branch at lr 0.03 turns non-finite within ~7 steps
# (and LiftedCL rightly stops on that). An SGD step costs the same whatever the lr.
LR_SCALE = 1e-3


def config_path(name: str) -> Path:
    if name == 'LiftedCL':
        return benchlib.require_file(benchlib.REPO / 'configs' / 'liftedcl_r50_coco.py',
                                     'the LiftedCL config (helper A2)')
    import mmpretrain
    mim = Path(mmpretrain.__file__).parent / '.mim' / 'configs'
    rel = dict(MoCoV2='mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
               DenseCL='densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py')[name]
    path = mim / rel
    if not path.exists():
        raise benchlib.BenchmarkError(f'MMPretrain config {path} not found (is mmpretrain '
                                      'installed with its .mim configs?)')
    return path


def _strip_pretrained(cfg: dict) -> None:
    # Random weights: the benchmark must not depend on checkpoint files.
    cfg.pop('pretrained', None)
    cfg.pop('init_cfg', None)
    for value in cfg.values():
        if isinstance(value, dict):
            _strip_pretrained(value)


def _scale_lr(cfg: dict, factor: float) -> dict:
    """Multiply the ``lr`` of every optimizer in an optimizer wrapper config by ``factor``."""
    cfg = copy.deepcopy(cfg)
    if 'optimizer' in cfg:
        cfg['optimizer']['lr'] = cfg['optimizer']['lr'] * factor
        return cfg
    for key, value in cfg.items():
        if isinstance(value, dict):
            cfg[key] = _scale_lr(value, factor)
    return cfg


def _to_amp(cfg: dict) -> dict:
    """Turn every plain optimizer wrapper config into an ``AmpOptimWrapper`` one."""
    cfg = copy.deepcopy(cfg)
    if 'optimizer' in cfg:
        if cfg.get('type', 'OptimWrapper') == 'OptimWrapper':
            cfg['type'] = 'AmpOptimWrapper'
        return cfg
    for key, value in cfg.items():
        if isinstance(value, dict):
            cfg[key] = _to_amp(value)
    return cfg


def build(name: str, amp: bool):
    """Model and optimizer wrapper(s) of ``name`` built from its config, as the Runner does."""
    if name == 'LiftedCL':
        benchlib.require('liftedcl_mm.models.algorithms.liftedcl', 'LiftedCL',
                         'the LiftedCL model (helper A2)')
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from liftedcl_mm.registry import MODELS
    from liftedcl_mm.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(config_path(name)))
    model_cfg = copy.deepcopy(cfg.model.to_dict() if hasattr(cfg.model, 'to_dict')
                              else dict(cfg.model))
    if model_cfg.get('data_preprocessor') is None and cfg.get('data_preprocessor'):
        model_cfg['data_preprocessor'] = copy.deepcopy(dict(cfg.data_preprocessor))
    if 'queue_len' not in model_cfg and name != 'LiftedCL':
        raise benchlib.BenchmarkError(f'{name} config has no model.queue_len')
    model_cfg['queue_len'] = QUEUE_LEN
    _strip_pretrained(model_cfg)
    model = MODELS.build(model_cfg)
    model.init_weights()
    ow_cfg = copy.deepcopy(cfg.optim_wrapper.to_dict() if hasattr(cfg.optim_wrapper, 'to_dict')
                           else dict(cfg.optim_wrapper))
    ow_cfg = _scale_lr(ow_cfg, LR_SCALE)
    if amp:
        ow_cfg = _to_amp(ow_cfg)
    return model, ow_cfg, build_optim_wrapper


def make_batch(batch: int, size: int, seed: int) -> dict:
    """A collated two-view batch as ``default_collate`` gives it to ``train_step``."""
    import numpy as np
    import torch
    from mmpretrain.structures import DataSample
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    height, width = ORI_SHAPE
    samples = []
    for i in range(batch):
        # Overlapping pairs, so that the equivariant branch has work to do.
        a, b = benchlib.overlapping_box_pair(rng, height, width)
        sample = DataSample()
        sample.set_metainfo(dict(sample_idx=i, ori_shape=ORI_SHAPE, img_shape=(size, size),
                                 view_bboxes=np.array([a, b], dtype=np.float32),
                                 view_flips=rng.random(2) < 0.5))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
              for _ in range(2)]
    return dict(inputs=inputs, data_samples=samples)


class Trainee:
    """One model with its optimizer wrapper(s) and batches, ready for ``step()``."""

    def __init__(self, name: str, cfg: dict):
        import torch
        self.name = name
        self.cuda = torch.cuda.is_available()
        self.amp = cfg['amp'] and self.cuda
        model, ow_cfg, build_optim_wrapper = build(name, self.amp)
        self.model = model.to(torch.device('cuda' if self.cuda else 'cpu')).train()
        self.optim_wrapper = build_optim_wrapper(self.model, ow_cfg)
        self.batches = [make_batch(cfg['batch'], cfg['size'], seed) for seed in range(3)]
        self.sync = benchlib.cuda_sync_fn()
        self.steps = 0

    def step(self) -> float:
        """Seconds of one ``train_step`` (data preprocessing, forward, backward, updates)."""
        batch = self.batches[self.steps % len(self.batches)]
        self.steps += 1
        out = {}

        def run():
            out['log_vars'] = self.model.train_step(batch, self.optim_wrapper)

        seconds = benchlib.timed(run, self.sync)
        # Non-finite numbers would take other (slower or faster) paths: not a fair timing.
        bad = [k for k, v in out['log_vars'].items()
               if not math.isfinite(float(v.detach() if hasattr(v, 'detach') else v))]
        if bad:
            raise benchlib.BenchmarkError(f'{self.name}: non-finite {bad} at step {self.steps}')
        return seconds


def settings(args) -> dict:
    import torch
    cfg = dict(QUICK if args.quick else (FULL_CUDA if torch.cuda.is_available() else FULL_CPU))
    for key in ('batch', 'warmup', 'iters'):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def measure_memory(name: str, cfg: dict) -> dict:
    """Peak memory of training ``name``: its process's peak RSS, or CUDA's peak allocation."""
    import torch
    trainee = Trainee(name, cfg)
    if trainee.cuda:
        torch.cuda.reset_peak_memory_stats()
    # Optimizer state appears at the first step; the peak is reached within a few.
    seconds = [trainee.step() for _ in range(max(3, cfg['warmup']))]
    if trainee.cuda:
        peak, kind = torch.cuda.max_memory_allocated(), 'torch.cuda.max_memory_allocated'
    else:
        peak, kind = benchlib.proc_status()['VmHWM'], 'peak RSS (VmHWM) of the process'
    return dict(model=name, peak_bytes=peak, memory_kind=kind, memory_run_seconds=seconds,
                params=sum(p.numel() for p in trainee.model.parameters() if p.requires_grad))


def measure_times(names, cfg: dict, profile: bool) -> dict:
    """Iteration times of every model, interleaved (A B C A B C ...) after each warmed up.

    Interleaving gives every model the same share of whatever else the machine is doing.
    """
    trainees = [Trainee(name, cfg) for name in names]
    for trainee in trainees:
        for _ in range(cfg['warmup']):
            trainee.step()
    times = {name: [] for name in names}
    for _ in range(cfg['iters']):
        for trainee in trainees:
            times[trainee.name].append(trainee.step())
    results = {}
    for trainee in trainees:
        results[trainee.name] = dict(
            model=trainee.name, config=str(config_path(trainee.name)), setting=cfg,
            amp=trainee.amp, seconds=times[trainee.name],
            median_s=benchlib.median(times[trainee.name]), device=benchlib.device_info())
        if profile:
            results[trainee.name]['profile'] = _profile(trainee)
    return results


def worker(args) -> None:
    """``--worker memory NAME`` or ``--worker times NAME...`` (``--worker both`` for --quick)."""
    import torch
    torch.set_num_threads(args.threads)
    benchlib.quiet_mmengine()
    mode, names = args.worker[0], args.worker[1:]
    cfg = settings(args)
    if mode == 'memory':
        result = {name: measure_memory(name, cfg) for name in names}
    elif mode == 'times':
        result = measure_times(names, cfg, args.profile)
    elif mode == 'both':  # --quick only: one process, so the peaks are shared (meaningless)
        result = measure_times(names, cfg, args.profile)
        peak = benchlib.proc_status()['VmHWM']
        for name in names:
            result[name].update(peak_bytes=peak, memory_kind='peak RSS of one shared process')
    else:
        raise ValueError(f'unknown worker mode {mode!r}')
    benchlib.write_json(args.worker_out, result)


def _profile(trainee: Trainee) -> str:
    """Top operators of two iterations (torch.profiler), self time first."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainee.cuda else [])
    with profile(activities=activities, record_shapes=False) as prof:
        for _ in range(2):
            trainee.step()
    key = 'self_cuda_time_total' if trainee.cuda else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=key, row_limit=30)


def main() -> None:
    parser = benchlib.base_parser(__doc__.splitlines()[0])
    parser.add_argument('--profile', action='store_true',
                        help='also run torch.profiler on 2 iterations and print top ops')
    for key in ('batch', 'warmup', 'iters'):
        parser.add_argument(f'--{key}', type=int, default=None,
                            help=f'override the {key} of the chosen setting')
    parser.add_argument('--models', nargs='+', default=list(MODELS_ORDER),
                        choices=MODELS_ORDER,
                        help='models to run (default: all; the table needs all three)')
    args = benchlib.parse_args(parser)
    if args.worker is not None:
        worker(args)
        return
    started = time.time()
    if 'LiftedCL' in args.models:
        config_path('LiftedCL')  # fail early and clearly if it is missing
    extra = (['--quick'] if args.quick else []) + (['--profile'] if args.profile else [])
    extra += ['--threads', str(args.threads)]
    for key in ('batch', 'warmup', 'iters'):
        if getattr(args, key) is not None:
            extra += [f'--{key}', str(getattr(args, key))]
    # Peak memory: one process per model, so peaks do not mix. Times: one process running the
    # models in turn. --quick does both in one process to save start-up time.
    jobs = ([['both', *args.models]] if args.quick else
            [['memory', name] for name in args.models] + [['times', *args.models]])
    results = {name: {} for name in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        for i, job in enumerate(jobs):
            out = benchlib.run_worker(Path(__file__), [*job, *extra], Path(tmp) / f'w{i}.json',
                                      timeout=600, what=f"iteration worker ({' '.join(job)})")
            for name, res in out.items():
                results[name].update(res)
    for name, res in results.items():
        print(f"{name}: median {res['median_s']:.3f} s/iter, "
              f"peak {res['peak_bytes'] / 2**20:.0f} MiB")
        if args.profile:
            print(f'--- profile of {name} ---\n{res["profile"]}')
    figures = []
    if {'LiftedCL', 'DenseCL', 'MoCoV2'} <= set(results):
        ours = results['LiftedCL']
        setting = ours['setting']
        what = (f"batch {setting['batch']}, {setting['size']}x{setting['size']}, "
                f"{'AMP, ' if ours['amp'] else ''}{ours['device'].get('gpu', 'CPU')}")
        time_note = (f"median of {setting['iters']} iterations after {setting['warmup']} "
                     'warm-up each, the models interleaved in one process; every learning '
                     f'rate x{LR_SCALE:g} for all models (random weights on noise diverge at '
                     'full lr; an SGD step costs the same); LiftedCL runs its encoders in '
                     'channels_last (model.channels_last=True, its default), the peers as '
                     'MMPretrain ships them')
        for peer, limit in (('DenseCL', 1.10), ('MoCoV2', 1.12)):
            other = results[peer]
            figures.append(benchlib.figure(
                f'iteration time vs {peer} ({what})', ours['median_s'], 's', peer=peer,
                peer_value=other['median_s'], ratio=ours['median_s'] / other['median_s'],
                ratio_def='ours / peer', target_op='<=', threshold=limit,
                note=time_note if peer == 'DenseCL' else ''))
        mib = 2.0**20
        figures.append(benchlib.figure(
            f'training peak memory vs DenseCL ({what})', ours['peak_bytes'] / mib, 'MiB',
            peer='DenseCL', peer_value=results['DenseCL']['peak_bytes'] / mib,
            ratio=ours['peak_bytes'] / results['DenseCL']['peak_bytes'],
            ratio_def='ours / peer', target_op='<=', threshold=1.10,
            note=f"memory = {ours['memory_kind']}"
            + ('' if args.quick else ', each model in its own process') + '; MoCoV2: '
            f"{results['MoCoV2']['peak_bytes'] / mib:,.0f} MiB"))
    details = {k: {kk: vv for kk, vv in v.items() if kk != 'profile'}
               for k, v in results.items()}
    if figures:
        benchlib.finish(BENCHMARK, args, figures, details, started)
    else:
        print(details)


if __name__ == '__main__':
    benchlib.main_guard(main)
