"""Benchmark the equivariant loss alone: batched+chunked vs the per-sample reference.

Measures alignment (``align_shared_regions``) + dense InfoNCE (``EquivariantInfoNCELoss``),
forward and backward, against ``reference_align`` + ``reference_equivariant_loss`` (a Python
loop over the batch and the full (M, 1 + K) logits) on the same inputs: batch 32, 8x8 maps,
128 channels, queue 16384, 16x16 alignment. Times: both in one subprocess, alternating, after
a warm-up. Memory: the first call of each in its own subprocess, so peaks do not mix. Peak
memory is the rise of the peak RSS (VmHWM, reset through
/proc/self/clear_refs) over the RSS right after the inputs exist (on GPU:
``torch.cuda.max_memory_allocated`` over the allocated memory then). The loss and the gradient
of the query feature maps must match the reference to 1e-5. With CUDA, the alignment alone is
also timed against the per-sample loop (target >= 10x).

    python tools/benchmarks/bench_equiv_loss.py [--quick] [--json OUT]
"""
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCHMARK = 'equiv_loss'
FULL = dict(batch=32, channels=128, map_size=8, queue=16384, out_size=16, warmup=1, repeats=5)
QUICK = dict(batch=4, channels=16, map_size=8, queue=512, out_size=16, warmup=0, repeats=1)
TEMPERATURE = 0.2
TOLERANCE = 1e-5


def _components():
    align = benchlib.require('liftedcl_mm.models.utils.view_alignment', 'align_shared_regions',
                             'batched view alignment (helper A1)')
    loss_cls = benchlib.require('liftedcl_mm.models.losses.equivariant_info_nce',
                                'EquivariantInfoNCELoss', 'the equivariant loss (helper A1)')
    ref = benchlib.require('liftedcl_mm.testing.equivariant_reference', None,
                           'the per-sample equivariant reference (helper A1)')
    for name in ('reference_align', 'reference_equivariant_loss'):
        benchlib.require('liftedcl_mm.testing.equivariant_reference', name,
                         'the per-sample equivariant reference (helper A1)')
    return align, loss_cls, ref.reference_align, ref.reference_equivariant_loss


def make_inputs(cfg: dict, device):
    """Deterministic feature maps, random overlapping crop boxes, flips and a queue."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    n, c, s = cfg['batch'], cfg['channels'], cfg['map_size']
    feat_q = torch.randn(n, c, s, s, generator=gen).to(device).requires_grad_(True)
    feat_k = torch.randn(n, c, s, s, generator=gen).to(device)
    boxes = np.array([benchlib.overlapping_box_pair(rng, 256, 192) for _ in range(n)],
                     dtype=np.float32)  # (n, 2, 4)
    bboxes_q = torch.from_numpy(boxes[:, 0]).to(device)
    bboxes_k = torch.from_numpy(boxes[:, 1]).to(device)
    flips = torch.from_numpy(rng.random((n, 2)) < 0.5).to(device)
    queue = F.normalize(torch.randn(cfg['queue'], c, generator=gen), dim=1).to(device)
    return feat_q, feat_k, bboxes_q, bboxes_k, flips[:, 0], flips[:, 1], queue


def loss_fn(impl: str, cfg: dict):
    """A closure computing alignment + loss (forward and backward) with ``impl``."""
    align, loss_cls, reference_align, reference_loss = _components()
    out_size = cfg['out_size']
    criterion = loss_cls(temperature=TEMPERATURE, loss_weight=1.0)

    def to_rows(aligned):  # (N, C, S, S) -> (N * S * S, C), row = one location
        return aligned.permute(0, 2, 3, 1).reshape(-1, aligned.shape[1])

    def run(feat_q, feat_k, bq, bk, fq, fk, queue):
        if feat_q.grad is not None:
            feat_q.grad = None
        if impl == 'ours':
            aq, ak, valid = align(feat_q, feat_k, bq, bk, fq, fk, out_size=out_size)
        else:
            aq, ak, valid = reference_align(feat_q, feat_k, bq, bk, fq, fk, out_size=out_size)
        valid_rows = valid.repeat_interleave(out_size * out_size)
        if impl == 'ours':
            loss = criterion(to_rows(aq), to_rows(ak), queue, valid_rows)
        else:
            loss = reference_loss(to_rows(aq), to_rows(ak), queue, valid_rows, TEMPERATURE)
        loss.backward()
        return loss.detach()

    return run, align, reference_align


def worker(args) -> None:
    """``--worker memory IMPL``, ``--worker times IMPL...`` or ``--worker both IMPL...``."""
    import torch
    torch.set_num_threads(args.threads)
    mode, impls = args.worker[0], args.worker[1:]
    cfg = QUICK if args.quick else FULL
    tensor_dir = args.worker_out.parent
    result = {impl: {} for impl in impls}
    if mode in ('memory', 'both'):
        for impl in impls:
            result[impl].update(measure_memory(impl, cfg, tensor_dir))
    if mode in ('times', 'both'):
        for impl, res in measure_times(impls, cfg).items():
            result[impl].update(res)
    if mode not in ('memory', 'times', 'both'):
        raise ValueError(f'unknown worker mode {mode!r}')
    benchlib.write_json(args.worker_out, result)


def measure_memory(impl: str, cfg: dict, tensor_dir: Path) -> dict:
    """Peak memory of the first call (a fresh process has nothing cached); saves loss, grad."""
    import torch
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    run, _, _ = loss_fn(impl, cfg)
    inputs = make_inputs(cfg, device)
    if device.type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        loss = run(*inputs)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        mem_kind = 'torch.cuda.max_memory_allocated over allocated inputs'
    else:
        reset_ok = benchlib.reset_peak_rss()
        base = benchlib.proc_status()['VmRSS']
        loss = run(*inputs)
        peak = benchlib.proc_status()['VmHWM'] - base
        mem_kind = 'peak RSS (VmHWM) over RSS after inputs' + (
            '' if reset_ok else ' (VmHWM reset unsupported: includes import peak)')
    torch.save(dict(loss=loss.cpu(), grad=inputs[0].grad.detach().cpu().clone()),
               tensor_dir / f'{impl}.pt')
    return dict(impl=impl, peak_bytes=peak, memory_kind=mem_kind, loss=float(loss))


def measure_times(impls, cfg: dict) -> dict:
    """Times of every implementation on the same inputs, interleaved after a warm-up."""
    import torch
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    sync = benchlib.cuda_sync_fn()
    inputs = make_inputs(cfg, device)
    runs = {}
    for impl in impls:
        runs[impl], align, reference_align = loss_fn(impl, cfg)
        for _ in range(cfg['warmup']):
            runs[impl](*inputs)
    times = {impl: [] for impl in impls}
    for _ in range(cfg['repeats']):
        for impl in impls:
            times[impl].append(benchlib.timed(lambda: runs[impl](*inputs), sync))
    result = {impl: dict(seconds=times[impl], median_s=benchlib.median(times[impl]),
                         device=benchlib.device_info()) for impl in impls}
    if device.type == 'cuda' and 'ours' in result:
        result['ours']['align'] = _time_alignment(align, reference_align, inputs, cfg, sync)
    return result


def _time_alignment(align, reference_align, inputs, cfg, sync) -> dict:
    import torch
    feat_q, feat_k, bq, bk, fq, fk, _ = inputs
    args = (feat_q.detach(), feat_k, bq, bk, fq, fk)
    out_size = cfg['out_size']
    res = {}
    with torch.no_grad():
        for name, fn in (('ours', align), ('reference', reference_align)):
            for _ in range(3):
                fn(*args, out_size=out_size)
            res[name] = benchlib.median(
                [benchlib.timed(lambda: fn(*args, out_size=out_size), sync) for _ in range(20)])
    return res


def main() -> None:
    args = benchlib.parse_args(benchlib.base_parser(__doc__.splitlines()[0]))
    if args.worker is not None:
        worker(args)
        return
    started = time.time()
    import torch
    results = {}
    extra = (['--quick'] if args.quick else []) + ['--threads', str(args.threads)]
    # Memory: one process per implementation, so peaks do not mix. Times: one process
    # alternating the two, so both see the same machine load. --quick: all in one process.
    jobs = ([['both', 'ours', 'reference']] if args.quick else
            [['memory', 'ours'], ['memory', 'reference'], ['times', 'ours', 'reference']])
    results = dict(ours={}, reference={})
    with tempfile.TemporaryDirectory() as tmp:
        for i, job in enumerate(jobs):
            out = benchlib.run_worker(Path(__file__), [*job, *extra], Path(tmp) / f'w{i}.json',
                                      timeout=600,
                                      what=f"equivariant loss worker ({' '.join(job)})")
            for impl, res in out.items():
                results[impl].update(res)
        for impl in results:
            results[impl]['tensors'] = torch.load(Path(tmp) / f'{impl}.pt', weights_only=True)
    ours, ref = results['ours'], results['reference']
    loss_diff = float((ours['tensors']['loss'] - ref['tensors']['loss']).abs())
    grad_diff = float((ours['tensors']['grad'] - ref['tensors']['grad']).abs().max())
    cfg = QUICK if args.quick else FULL
    mib = 1024.0**2
    figures = [
        benchlib.figure('equiv. loss time (align + InfoNCE, fwd + bwd)', ours['median_s'], 's',
                        peer='per-sample reference', peer_value=ref['median_s'],
                        ratio=ours['median_s'] / ref['median_s'], ratio_def='ours / peer',
                        target_op='<=', threshold=1.0,
                        note=f"median of {cfg['repeats']} calls each after {cfg['warmup']} "
                        'warm-up, the two alternating in one process'),
        benchlib.figure('equiv. loss peak memory', ours['peak_bytes'] / mib, 'MiB',
                        peer='per-sample reference', peer_value=ref['peak_bytes'] / mib,
                        ratio=ours['peak_bytes'] / max(ref['peak_bytes'], 1),
                        ratio_def='ours / peer', target_op='<=', threshold=0.5,
                        note=f"memory = {ours['memory_kind']}, "
                        + ('both in one process (--quick)' if args.quick
                           else 'each in its own process')),
        benchlib.figure('equiv. loss value, max abs diff', loss_diff, '', peer=None,
                        target_on='value', target_op='<=', threshold=TOLERANCE),
        benchlib.figure('equiv. loss grad (query maps), max abs diff', grad_diff, '', peer=None,
                        target_on='value', target_op='<=', threshold=TOLERANCE),
    ]
    if 'align' in ours:
        align = ours['align']
        figures.append(benchlib.figure(
            'alignment alone on GPU', align['ours'], 's', peer='per-sample loop',
            peer_value=align['reference'], ratio=align['reference'] / align['ours'],
            ratio_def='peer / ours (speed-up)', target_op='>=', threshold=10.0))
    print(f'max abs diff: loss {loss_diff:.3e}, grad {grad_diff:.3e}')
    details = dict(config=cfg, temperature=TEMPERATURE,
                   ours={k: v for k, v in ours.items() if k != 'tensors'},
                   reference={k: v for k, v in ref.items() if k != 'tensors'})
    benchlib.finish(BENCHMARK, args, figures, details, started)


if __name__ == '__main__':
    benchlib.main_guard(main)
