"""Shared helpers of the benchmark scripts: figures, tables, JSON, memory and subprocesses.

Only the standard library is imported at module level, so a script that merely orchestrates
worker subprocesses starts in milliseconds; torch is imported where it is needed.

A *figure* is one measured quantity with its target::

    dict(name=..., value=..., unit=..., peer=..., peer_value=..., ratio=..., ratio_def=...,
         target=dict(on='ratio' | 'value', op='<=' | '<' | '>=' | '>', threshold=float),
         passed=bool, note=...)

``ratio`` is defined per figure by ``ratio_def`` (e.g. ``'ours / peer'`` for times and
memory, ``'peer / ours'`` for speed-ups) so that every target reads naturally.
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = REPO / 'benchmark_results'
PYTHON = sys.executable

_OPS = {
    '<=': lambda a, b: a <= b,
    '<': lambda a, b: a < b,
    '>=': lambda a, b: a >= b,
    '>': lambda a, b: a > b,
}

# Exit status of a script whose subject (a liftedcl_mm component) does not exist yet.
EXIT_MISSING = 3


class MissingComponent(RuntimeError):
    """A component the benchmark measures is not (yet) in the tree."""


class BenchmarkError(RuntimeError):
    """A benchmark or one of its worker subprocesses failed."""


def require(module: str, name: Optional[str] = None, what: str = ''):
    """Import ``module`` (and return its attribute ``name``) or raise a clear MissingComponent.

    Args:
        module (str): Dotted module path, e.g. ``'liftedcl_mm.models.utils.view_alignment'``.
        name (str, optional): Attribute to return. None returns the module.
        what (str): Who provides it, for the message (e.g. ``'the LiftedCL model'``).
    """
    import importlib
    label = f'{module}.{name}' if name else module
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        # Only a missing piece of *this* module path means "not written yet"; anything else
        # missing is a genuine import error that must surface as a crash.
        if err.name and (module == err.name or module.startswith(err.name + '.')):
            raise MissingComponent(f'missing component {what or label}: module `{module}` '
                                   f'does not exist ({err})') from err
        raise
    if name is None:
        return mod
    if not hasattr(mod, name):
        raise MissingComponent(f'missing component {what or label}: `{module}` has no '
                               f'attribute `{name}`')
    return getattr(mod, name)


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it exists, else raise MissingComponent naming ``what``."""
    path = Path(path)
    if not path.exists():
        raise MissingComponent(f'missing component {what}: `{path}` does not exist')
    return path


def figure(name: str,
           value: float,
           unit: str,
           *,
           target_op: str,
           threshold: float,
           target_on: str = 'ratio',
           peer: Optional[str] = None,
           peer_value: Optional[float] = None,
           ratio: Optional[float] = None,
           ratio_def: Optional[str] = None,
           note: str = '') -> dict:
    """Build one figure and decide PASS/FAIL against its target.

    Args:
        name (str): What is measured, e.g. ``'iteration time vs DenseCL'``.
        value (float): Our measured value.
        unit (str): Unit of ``value`` and ``peer_value``.
        target_op (str): One of ``<=``, ``<``, ``>=``, ``>``.
        threshold (float): Target threshold.
        target_on (str): ``'ratio'`` or ``'value'``: what the target constrains.
        peer (str, optional): Name of what we compare against.
        peer_value (float, optional): Its measured value.
        ratio (float, optional): Comparison defined by ``ratio_def``.
        ratio_def (str, optional): E.g. ``'ours / peer'``.
        note (str): Caveats (extrapolation, fallbacks) shown under the table.
    """
    if target_op not in _OPS:
        raise ValueError(f'target_op must be one of {sorted(_OPS)}, got {target_op!r}')
    if target_on not in ('ratio', 'value'):
        raise ValueError(f"target_on must be 'ratio' or 'value', got {target_on!r}")
    subject = ratio if target_on == 'ratio' else value
    if subject is None:
        raise ValueError(f'figure {name!r}: target is on {target_on} but it is None')
    return dict(
        name=name,
        value=float(value),
        unit=unit,
        peer=peer,
        peer_value=None if peer_value is None else float(peer_value),
        ratio=None if ratio is None else float(ratio),
        ratio_def=ratio_def,
        target=dict(on=target_on, op=target_op, threshold=float(threshold)),
        passed=bool(_OPS[target_op](float(subject), float(threshold))),
        note=note)


def _fmt(value: Optional[float], unit: str = '') -> str:
    if value is None:
        return '-'
    if value == 0:
        text = '0'
    elif abs(value) >= 1000:
        text = f'{value:,.0f}'
    elif abs(value) >= 10:
        text = f'{value:.1f}'
    elif abs(value) >= 0.01:
        text = f'{value:.3f}'
    else:
        text = f'{value:.2e}'
    return f'{text} {unit}'.strip()


def target_text(fig: dict) -> str:
    tgt = fig['target']
    if tgt['on'] == 'ratio':
        return f"ratio {tgt['op']} {tgt['threshold']:g}x"
    return f"{tgt['op']} {tgt['threshold']:g} {fig['unit']}".rstrip()


def markdown_table(figures: Sequence[dict], with_benchmark: bool = False) -> str:
    """Render figures as a markdown table (notes become numbered footnotes)."""
    head = ['Figure', 'Value', 'Peer', 'Peer value', 'Ratio', 'Target', 'Result']
    if with_benchmark:
        head.insert(0, 'Benchmark')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    notes = []
    for fig in figures:
        name = fig['name']
        if fig.get('note'):
            notes.append(fig['note'])
            name += f' [{len(notes)}]'
        ratio = '-' if fig['ratio'] is None else f"{_fmt(fig['ratio'])}x ({fig['ratio_def']})"
        row = [name, _fmt(fig['value'], fig['unit']), fig['peer'] or '-',
               _fmt(fig['peer_value'], fig['unit']), ratio, target_text(fig),
               'PASS' if fig['passed'] else 'FAIL']
        if with_benchmark:
            row.insert(0, fig.get('benchmark', ''))
        lines.append('| ' + ' | '.join(row) + ' |')
    for i, note in enumerate(notes, 1):
        lines.append(f'\n[{i}] {note}')
    return '\n'.join(lines)


def machine_info() -> Dict[str, object]:
    """CPU model, cores, load, library versions and date (no torch import)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmpretrain', 'numpy'):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return dict(cpu=cpu, cores=os.cpu_count(), usable_cores=usable, load_avg=load,
                python=platform.python_version(), platform=platform.platform(),
                versions=versions,
                date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'))


def quiet_mmengine() -> None:
    """Keep MMEngine's INFO messages (e.g. one per initialised weight) out of the output."""
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)


def device_info() -> Dict[str, object]:
    """Torch device used by this process (imports torch)."""
    import torch
    info = dict(torch=torch.__version__, cuda=torch.cuda.is_available(),
                threads=torch.get_num_threads())
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


# ----------------------------------------------------------------------------- memory
def proc_status() -> Dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process in bytes, from /proc/self/status."""
    out = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                key, val = line.split(':', 1)
                out[key] = int(val.split()[0]) * 1024
    if 'VmHWM' not in out:
        raise BenchmarkError('/proc/self/status has no VmHWM: peak RSS needs Linux')
    return out


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False if unsupported."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- inputs
def random_crop_box(rng, height: int, width: int) -> List[int]:
    """A RandomResizedCrop-style box ``[x1, y1, x2, y2]`` (area 0.2-1, aspect 3/4-4/3).

    Args:
        rng (numpy.random.Generator): Source of randomness.
        height (int): Image height.
        width (int): Image width.
    """
    for _ in range(10):
        area = height * width * rng.uniform(0.2, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < w <= width and 0 < h <= height:
            x1, y1 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return [x1, y1, x1 + w, y1 + h]
    return [0, 0, width, height]


def overlapping_box_pair(rng, height: int, width: int) -> List[List[int]]:
    """Two random crop boxes that share an area (redrawn until they do)."""
    while True:
        a, b = random_crop_box(rng, height, width), random_crop_box(rng, height, width)
        if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]):
            return [a, b]


# ----------------------------------------------------------------------------- timing
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed(fn: Callable[[], object], sync: Callable[[], None] = lambda: None) -> float:
    """Seconds taken by ``fn()`` (``sync`` waits for asynchronous devices)."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def cuda_sync_fn():
    import torch
    if torch.cuda.is_available():
        return torch.cuda.synchronize
    return lambda: None


# ----------------------------------------------------------------------------- processes
def run_python(args: List[str], timeout: float, env: Optional[dict] = None,
               what: str = '') -> subprocess.CompletedProcess:
    """Run ``python args...`` from the repository root; raise BenchmarkError on failure."""
    full_env = dict(os.environ)
    full_env.setdefault('PYTHONPATH', '')
    full_env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(REPO), full_env['PYTHONPATH']) if p)
    full_env.update(env or {})
    try:
        proc = subprocess.run([PYTHON] + [str(a) for a in args], cwd=REPO, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise BenchmarkError(f'{what or args} timed out after {timeout:.0f} s') from err
    if proc.returncode == EXIT_MISSING:
        raise MissingComponent(_last_lines(proc.stderr, 5))
    if proc.returncode != 0:
        raise BenchmarkError(f'{what or args} failed with exit code {proc.returncode}:\n'
                             f'{_last_lines(proc.stdout, 10)}\n{_last_lines(proc.stderr, 40)}')
    return proc


def _last_lines(text: str, n: int) -> str:
    return '\n'.join(text.strip().splitlines()[-n:])


def run_worker(script: Path, worker_args: List[str], out_json: Path, timeout: float,
               what: str = '') -> dict:
    """Run ``script --worker ... --worker-out out_json`` and return the JSON it wrote."""
    proc = run_python([script, '--worker', *worker_args, '--worker-out', out_json],
                      timeout=timeout, what=what)
    try:
        return json.loads(Path(out_json).read_text())
    except (OSError, ValueError) as err:
        raise BenchmarkError(f'{what}: worker wrote no readable result to {out_json}') from err


# ----------------------------------------------------------------------------- CLI
def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes and few repeats: a seconds-long smoke run whose '
                        'numbers mean nothing')
    parser.add_argument('--json', type=Path, default=None,
                        help='where to write the JSON result (default: '
                        'benchmark_results/<benchmark>.json, or <benchmark>_quick.json)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads of the measuring processes (default 2; '
                        '1 with --quick, where 2 threads on a busy machine only add contention)')
    parser.add_argument('--worker', nargs='*', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--worker-out', type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def parse_args(parser: argparse.ArgumentParser):
    """Parse and fill the defaults that depend on ``--quick``."""
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 1 if args.quick else 2
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    return args


def write_json(path: Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + '\n')


def finish(benchmark: str, args, figures: List[dict], details: dict,
           started: float) -> dict:
    """Print the table and write the JSON of one benchmark; return the payload."""
    payload = dict(benchmark=benchmark, quick=bool(args.quick), machine=machine_info(),
                   seconds=round(time.time() - started, 2), figures=figures, details=details)
    print(f'\n### {benchmark}' + (' (--quick: smoke run, numbers are meaningless)'
                                  if args.quick else '') + '\n')
    print(markdown_table(figures))
    path = args.json or RESULTS_DIR / f"{benchmark}{'_quick' if args.quick else ''}.json"
    write_json(path, payload)
    print(f'\nwrote {path}')
    return payload


def main_guard(main: Callable[[], None]) -> None:
    """Run ``main`` turning a missing component into a clear message and exit status 3."""
    try:
        main()
    except MissingComponent as err:
        print(f'BENCHMARK NOT RUN: {err}', file=sys.stderr)
        sys.exit(EXIT_MISSING)
