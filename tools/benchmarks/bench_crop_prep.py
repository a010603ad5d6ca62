"""Benchmark crop preparation: crops/s of ``prepare_coco_human_crops.py`` with 1 and 2 workers.

The demo COCO data (``data/demo/coco``, or ``--coco-root``) is enlarged ``--repeat`` times into
a temporary COCO root (images linked under new names, annotations copied with new ids) so that
a run lasts long enough to measure. The tool's ``main()`` is called in this process with
``--workers 1`` and ``--workers 2`` (its worker pool start-up included, the Python start-up
excluded), each run into a fresh temporary output folder; runs alternate (1, 2, 1, 2, ...) and
the fastest of each counts. The figure is the scaling ratio, 2 workers over 1.

    python tools/benchmarks/bench_crop_prep.py [--quick] [--json OUT] [--coco-root DIR]
"""
import contextlib
import importlib.util
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

BENCHMARK = 'crop_prep'
TOOL = benchlib.REPO / 'tools' / 'dataset_converters' / 'prepare_coco_human_crops.py'
FULL = dict(repeat=40, rounds=3)
QUICK = dict(repeat=1, rounds=1)
# The issue sets no number. 2 workers must beat 1; the ceiling on this machine is set by the
# hardware: with two busy processes the CPU time per crop rises ~40% (the 2 vCPUs share a physical
# core's resources), so ~1.4x is the most 2 workers can give here (the JSON records CPU seconds).
SCALING_TARGET = 1.0


def load_tool():
    benchlib.require_file(TOOL, 'the crop tool (helper B)')
    spec = importlib.util.spec_from_file_location('prepare_coco_human_crops', TOOL)
    mod = importlib.util.module_from_spec(spec)
    # Registered under its name so that its worker objects pickle into the pool.
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    if not hasattr(mod, 'main'):
        raise benchlib.MissingComponent(f'missing component: {TOOL} has no main(argv)')
    return mod


def enlarge_coco(src: Path, dst: Path, split: str, repeat: int) -> int:
    """Write a COCO root at ``dst`` holding ``src``'s split ``repeat`` times; return #images."""
    ann_name = f'person_keypoints_{split}.json'
    ann_file = benchlib.require_file(src / 'annotations' / ann_name, 'the demo COCO data')
    coco = json.loads(ann_file.read_text())
    (dst / 'annotations').mkdir(parents=True)
    (dst / split).mkdir()
    max_img = max(img['id'] for img in coco['images']) + 1
    max_ann = max(ann['id'] for ann in coco['annotations']) + 1
    images, anns = [], []
    for r in range(repeat):
        for img in coco['images']:
            new = dict(img, id=img['id'] + r * max_img, file_name=f"r{r}_{img['file_name']}")
            os.symlink((src / split / img['file_name']).resolve(), dst / split / new['file_name'])
            images.append(new)
        for ann in coco['annotations']:
            anns.append(dict(ann, id=ann['id'] + r * max_ann,
                             image_id=ann['image_id'] + r * max_img))
    (dst / 'annotations' / ann_name).write_text(json.dumps(dict(coco, images=images,
                                                                annotations=anns)))
    return len(images)


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the tool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_tool(tool, coco_root: Path, out: Path, workers: int, split: str):
    """Seconds of one run and the number of crops it wrote."""
    argv = ['--coco-root', str(coco_root), '--split', split, '--out', str(out),
            '--workers', str(workers), '--no-progress']
    sink = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        status = tool.main(argv)
    seconds = time.perf_counter() - start
    if status not in (0, None):
        raise benchlib.BenchmarkError(f'crop tool exited with {status}: {sink.getvalue()[-2000:]}')
    crops = list((out / 'crops' / split).glob('*.jpg'))
    if not crops:
        raise benchlib.BenchmarkError(f'crop tool wrote no crops into {out}')
    return seconds, len(crops)


def main() -> None:
    parser = benchlib.base_parser(__doc__.splitlines()[0])
    parser.add_argument('--coco-root', type=Path, default=benchlib.REPO / 'data/demo/coco')
    parser.add_argument('--split', default='train2017')
    parser.add_argument('--repeat', type=int, default=None,
                        help='copies of the split in the enlarged root (default 40, --quick 1)')
    args = benchlib.parse_args(parser)
    started = time.time()
    cfg = dict(QUICK if args.quick else FULL)
    if args.repeat is not None:
        cfg['repeat'] = args.repeat
    tool = load_tool()
    times = {1: [], 2: []}
    cpu_seconds = {1: [], 2: []}
    counts = set()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 'coco'
        num_images = enlarge_coco(args.coco_root, root, args.split, cfg['repeat'])
        for rnd in range(cfg['rounds']):
            for workers in (1, 2):
                out = Path(tmp) / f'out_{workers}_{rnd}'
                before = _cpu_seconds()
                seconds, num = run_tool(tool, root, out, workers, args.split)
                cpu_seconds[workers].append(_cpu_seconds() - before)
                times[workers].append(seconds)
                counts.add(num)
                shutil.rmtree(out)
    if len(counts) != 1:
        raise benchlib.BenchmarkError(f'runs wrote different numbers of crops: {counts}')
    num_crops = counts.pop()
    rate = {w: num_crops / min(t) for w, t in times.items()}
    cpu = {w: min(c) / num_crops for w, c in cpu_seconds.items()}
    figures = [benchlib.figure(
        'crop preparation, 2 workers vs 1', rate[2], 'crops/s', peer='1 worker',
        peer_value=rate[1], ratio=rate[2] / rate[1], ratio_def='2 workers / 1 worker',
        target_op='>', threshold=SCALING_TARGET,
        note=f'{num_crops} crops from {num_images} images ({args.coco_root} x{cfg["repeat"]}); '
        f'fastest of {cfg["rounds"]} alternating runs; CPU seconds per crop (all processes): '
        f'1 worker {cpu[1]:.2e}, 2 workers {cpu[2]:.2e} (hardware contention bounds the scaling '
        f'at ~{2 * cpu[1] / cpu[2]:.2f}x); target: 2 workers faster than 1 (ours, the issue sets '
        'none)')]
    details = dict(config=cfg, seconds={str(k): v for k, v in times.items()},
                   num_crops=num_crops, num_images=num_images,
                   cpu_seconds_per_crop={str(k): v for k, v in cpu.items()})
    benchlib.finish(BENCHMARK, args, figures, details, started)


if __name__ == '__main__':
    benchlib.main_guard(main)
