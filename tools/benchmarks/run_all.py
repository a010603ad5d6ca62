"""Run every benchmark (each in its own subprocess) and print one combined table.

Writes ``<out-dir>/latest.json`` (machine, every figure with its target and PASS/FAIL, per
benchmark details) and ``<out-dir>/latest.md`` (the table, for the README); ``--quick`` writes
``latest_quick.json``/``latest_quick.md`` instead, so a smoke run never replaces real numbers.
Each benchmark's own JSON goes next to them. The exit status is 0 when every benchmark ran,
whatever its PASS/FAIL (the numbers are reported, not enforced), and 1 when a benchmark
crashed or could not run (a missing component, for instance).

    python tools/benchmarks/run_all.py [--quick] [--out-dir benchmark_results] [--only NAME ...]

The full run takes about 5 minutes on 2 idle CPU cores (budget: 10 minutes); ``--quick`` is a
smoke run of well under 90 seconds whose numbers mean nothing.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

# (name, script); order: the cheap ones first so a crash shows early.
BENCHMARKS = (
    ('skeleton_prior', 'bench_skeleton_prior.py'),
    ('equiv_loss', 'bench_equiv_loss.py'),
    ('crop_prep', 'bench_crop_prep.py'),
    ('pipeline', 'bench_pipeline.py'),
    ('iteration', 'bench_iteration.py'),
    ('vis_hook', 'bench_vis_hook.py'),
)
TIMEOUT = dict(full=900, quick=120)  # per benchmark, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke run with tiny sizes')
    parser.add_argument('--out-dir', type=Path, default=benchlib.RESULTS_DIR,
                        help='where latest.json and latest.md go (default benchmark_results/)')
    parser.add_argument('--only', nargs='+', choices=[b[0] for b in BENCHMARKS],
                        help='run only these benchmarks')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads of the measuring processes (default 2, --quick 1)')
    args = parser.parse_args()

    started = time.time()
    machine = benchlib.machine_info()
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    results, errors, figures = {}, {}, []
    for name, script in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        json_path = out_dir / f"{name}{'_quick' if args.quick else ''}.json"
        json_path.unlink(missing_ok=True)  # never report an earlier run's numbers
        cmd = [benchlib.BENCH_DIR / script, '--json', json_path]
        if args.threads is not None:
            cmd += ['--threads', str(args.threads)]
        if args.quick:
            cmd.append('--quick')
        t0 = time.time()
        print(f'[run_all] {name} ...', flush=True)
        try:
            proc = benchlib.run_python(cmd, timeout=TIMEOUT['quick' if args.quick else 'full'],
                                       what=f'benchmark {name}')
            payload = json.loads(json_path.read_text())
        except (benchlib.BenchmarkError, benchlib.MissingComponent, OSError,
                ValueError) as err:
            errors[name] = f'{type(err).__name__}: {err}'
            print(f'[run_all] {name} FAILED TO RUN ({time.time() - t0:.0f} s):\n{err}',
                  file=sys.stderr, flush=True)
            continue
        print(proc.stdout.rstrip(), flush=True)
        print(f'[run_all] {name} done in {time.time() - t0:.0f} s', flush=True)
        results[name] = payload
        for fig in payload['figures']:
            figures.append(dict(fig, benchmark=name))

    total = time.time() - started
    table = benchlib.markdown_table(figures, with_benchmark=True)
    header = (f"Machine: {machine['cpu']}, {machine['cores']} cores "
              f"({machine['usable_cores']} usable), load avg before the run "
              f"{_load(machine)}, torch {machine['versions']['torch']}, "
              f"mmpretrain {machine['versions']['mmpretrain']}, {machine['date']}; "
              f'total {total:.0f} s' + (' (--quick: numbers are meaningless)'
                                        if args.quick else ''))
    passed = sum(f['passed'] for f in figures)
    summary = f'{passed}/{len(figures)} figures meet their target'
    if errors:
        summary += f"; FAILED TO RUN: {', '.join(errors)}"
    md = f'{header}\n\n{table}\n\n{summary}\n'
    payload = dict(machine=machine, quick=args.quick, total_seconds=round(total, 1),
                   figures=figures, errors=errors, benchmarks=results)
    stem = 'latest_quick' if args.quick else 'latest'  # a smoke run never replaces real numbers
    benchlib.write_json(out_dir / f'{stem}.json', payload)
    (out_dir / f'{stem}.md').write_text(md)
    print('\n' + md)
    print(f"wrote {out_dir / f'{stem}.json'} and {out_dir / f'{stem}.md'}")
    return 1 if errors else 0


def _load(machine: dict) -> str:
    load = machine.get('load_avg')
    return '-' if not load else '/'.join(f'{v:.2f}' for v in load)


if __name__ == '__main__':
    sys.exit(main())
