#!/usr/bin/env bash
# One short check of liftedcl_mm on a GPU machine that has torch but no network and no
# OpenMMLab packages. Run from anywhere; works on a copy of the repository:
#
#   OUT=/some/dir bash tools/misc/device_check.sh
#
# The wheel bundle is built by tools/misc/build_device_bundle.sh (on a machine with network).
# Needs the wheel bundle in .gpu/wheels (mmengine, mmcv 2.1.0 built without ops, mmpretrain,
# mmpose, mmdet, xtcocotools for cp312, ... plus setuptools<81 for pkg_resources). It
#   0. makes a venv in /tmp that sees the interpreter's own packages (torch, numpy, cv2, ...),
#      installs the bundle offline (--no-index --no-deps) and liftedcl_mm (editable);
#   1. prints nvidia-smi, torch/CUDA versions and runs one CUDA matmul;
#   a. pytest tests/test_models + tests/test_tools/test_train_launchers.py (not slow). There is no
#      CUDA-only test and no option that moves the unit tests to CUDA: the launcher tests take
#      their CUDA branch (nccl backend kept, --amp accepted) and train the tiny config on the GPU;
#   c. tools/train.py --amp: the tiny demo config and ResNet-50 (configs/liftedcl_r50_coco.py
#      on the shipped demo crops, iteration-based), checks every logged loss is finite and that
#      the last iteration was reached, prints the median iteration time;
#   b. tools/benchmarks/run_all.py (by default only the GPU-relevant benchmarks, full sizes);
#   d. copies logs to $OUT (flat names, at most 8 files).
# Every part runs even if an earlier one failed; a summary table ends the output and the exit
# status is 1 when any part failed. Each part has a timeout, and all parts share a total budget
# (DC_TOTAL_S) so that the script ends, logs copied, before the caller's limit.
#
# Environment (defaults are for an H100 + 16 cores):
#   OUT                     output folder (default /tmp/device_check_out)
#   DEVICE_CHECK_ALLOW_CPU  1: rehearsal without a GPU (no --amp, no nvidia-smi requirement)
#   DC_TOTAL_S              total budget in seconds (default 420)
#   DC_TINY_ITERS / DC_R50_ITERS   iterations (default 50 / 50)
#   DC_R50_BATCH / DC_R50_WORKERS  ResNet-50 batch and DataLoader workers (default 32 / 8)
#   DC_R50_REPEAT           RepeatDataset times for the ResNet-50 run's ~80 demo crops (default
#                           1: none; the run is then data-bound at the epoch boundaries)
#   DC_R50_CFG_OPTIONS      extra --cfg-options for the ResNet-50 run (space separated)
#   DC_BENCH_ARGS           run_all.py arguments (default "--only equiv_loss iteration")
#   DC_PYTEST_TARGETS       pytest targets (default tests/test_models + train launcher tests)
#   DC_BASE_PYTHON          interpreter with torch (default python3)
#   DC_VENV / DC_WHEELS     venv path (default /tmp/liftedcl_dc_venv) / wheel folder
#   DC_FORCE_TARGET         1: skip the venv, use pip --target + PYTHONPATH (the fallback)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
OUT="${OUT:-/tmp/device_check_out}"
mkdir -p "$OUT"
WHEELS="${DC_WHEELS:-$REPO/.gpu/wheels}"
VENV="${DC_VENV:-/tmp/liftedcl_dc_venv}"
BASE_PY="${DC_BASE_PYTHON:-python3}"
ALLOW_CPU="${DEVICE_CHECK_ALLOW_CPU:-0}"
TOTAL_S="${DC_TOTAL_S:-420}"
TINY_ITERS="${DC_TINY_ITERS:-50}"
R50_ITERS="${DC_R50_ITERS:-50}"
R50_BATCH="${DC_R50_BATCH:-32}"
R50_WORKERS="${DC_R50_WORKERS:-8}"
R50_REPEAT="${DC_R50_REPEAT:-1}"
R50_CFG_OPTIONS="${DC_R50_CFG_OPTIONS:-}"
BENCH_ARGS="${DC_BENCH_ARGS:---only equiv_loss iteration}"
PYTEST_TARGETS="${DC_PYTEST_TARGETS:-tests/test_models tests/test_tools/test_train_launchers.py}"
START="${DC_START:-$(date +%s)}"
WORK="${DC_WORK:-}"
if [ "${1:-}" != __part ]; then
  WORK="$(mktemp -d /tmp/liftedcl_dc_work.XXXXXX)"
  export DC_WORK="$WORK" DC_START="$START"
  exec > >(tee "$OUT/device_check.log") 2>&1
fi

say() { echo "[device_check $(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*"; }

NAMES=(); RCS=(); SECS=()
# part NAME TIMEOUT CMD...: run CMD with min(TIMEOUT, what is left of the budget); record rc.
part() {
  local name="$1" limit="$2"; shift 2
  local left=$(( TOTAL_S - ($(date +%s) - START) - 15 ))
  (( limit > left )) && limit=$left
  say "=== part $name (timeout ${limit}s): $*"
  local t0 rc
  t0=$(date +%s)
  if (( limit < 5 )); then
    say "part $name SKIPPED: out of the total budget (${TOTAL_S}s)"
    rc=125
  else
    # each part is this script run again (`__part FUNCTION`): timeout cannot run a function
    rc=0
    timeout -k 10 "$limit" bash "${BASH_SOURCE[0]}" __part "$@" || rc=$?
  fi
  NAMES+=("$name"); RCS+=("$rc"); SECS+=("$(( $(date +%s) - t0 ))")
  say "=== part $name: rc=$rc ($(( $(date +%s) - t0 )) s)"
  return 0
}

export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_CONSTRAINT PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_REQUIRE_VIRTUALENV
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
VPY="$VENV/bin/python"

setup_env() {
  set -e
  say "base interpreter: $(command -v "$BASE_PY") ($("$BASE_PY" -V 2>&1))"
  ls -la "$WHEELS"
  rm -rf "$VENV"
  # The base python3 may itself be a venv (/opt/torch/.venv): a venv made from it would see the
  # underlying system site-packages, not torch. Link the base's site-packages by a .pth file
  # instead; they come after the venv's own (so the bundle's setuptools<81 wins).
  if [ "${DC_FORCE_TARGET:-0}" != 1 ] && "$BASE_PY" -m venv --without-pip "$VENV"; then
    local site
    site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # addsitedir (an "import" line of a .pth file runs) also runs the base's own .pth files
    "$BASE_PY" -c 'import site; print("import site; " + "; ".join(
        f"site.addsitedir({p!r})" for p in site.getsitepackages()))' \
      > "$site/_device_base_site.pth"
    cat "$site/_device_base_site.pth"
    # pip comes from the base's site-packages; it installs into the running interpreter's venv.
    "$VPY" -m pip --version
    "$VPY" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
    # Our package from the checkout by a .pth file: an editable install runs setup.py develop,
    # which wants setuptools from an index the machine cannot reach.
    echo "$REPO" > "$site/_liftedcl_repo.pth"
    # transformers >= 5 in the image makes MMPretrain 1.2.0 import its BLIP models, which subclass
    # a class transformers 5 no longer has; a metadata-only entry found first says "too old".
    mkdir -p "$site/transformers-0.0.0.dist-info"
    printf 'Metadata-Version: 2.1\nName: transformers\nVersion: 0.0.0\n' \
      > "$site/transformers-0.0.0.dist-info/METADATA"
  else
    # Fallback without the venv module: the bundle in a --target folder, first on PYTHONPATH
    # (with the repository, instead of the editable install) of a wrapper named like a venv's.
    say "no venv: pip install --target $VENV/site + PYTHONPATH wrapper $VPY"
    rm -rf "$VENV"; mkdir -p "$VENV/bin" "$VENV/site"
    "$BASE_PY" -m pip install -q --no-index --no-deps --target "$VENV/site" "$WHEELS"/*.whl
    printf '#!/bin/sh\nPYTHONPATH="%s:%s${PYTHONPATH:+:$PYTHONPATH}" exec "%s" "$@"\n' \
      "$VENV/site" "$REPO" "$(command -v "$BASE_PY")" > "$VPY"
    chmod +x "$VPY"
    cat "$VPY"
  fi
  "$VPY" - <<'PYEOF'
import importlib.metadata as md
import numpy, torch, torchvision, cv2, mmcv, mmengine, mmpretrain, mmpose, mmdet, pkg_resources
import mmpose.models, mmpretrain.models
from xtcocotools.coco import COCO
import liftedcl_mm
from liftedcl_mm.utils import register_all_modules
register_all_modules()
for name in ('torch', 'torchvision', 'numpy', 'opencv-python-headless', 'setuptools', 'mmcv',
             'mmengine', 'mmpretrain', 'mmpose', 'mmdet', 'xtcocotools', 'liftedcl_mm'):
    try:
        print(f'  {name:24s} {md.version(name)}')
    except md.PackageNotFoundError:
        print(f'  {name:24s} -')
print('  liftedcl_mm from', liftedcl_mm.__file__)
PYEOF
}

gpu_info() {
  set -e
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi || true
  elif [ "$ALLOW_CPU" != 1 ]; then
    echo "nvidia-smi not found"; return 1
  fi
  "$VPY" - "$ALLOW_CPU" <<'PYEOF'
import os, sys, time
import torch
print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN',
      torch.backends.cudnn.version(), 'available', torch.cuda.is_available(),
      'cpu threads', torch.get_num_threads(), 'cores', os.cpu_count())
if not torch.cuda.is_available():
    sys.exit(0 if sys.argv[1] == '1' else 'CUDA is not available')
print('device', torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
a = torch.randn(4096, 4096, device='cuda', dtype=torch.half)
torch.cuda.synchronize(); t = time.time()
for _ in range(20):
    b = a @ a
torch.cuda.synchronize()
print(f'fp16 matmul 4096^3: {20 * 2 * 4096 ** 3 / (time.time() - t) / 1e12:.1f} TFLOP/s')
PYEOF
}

run_pytest() {
  local rc=0
  # shellcheck disable=SC2086
  "$VPY" -m pytest -q -ra -p no:cacheprovider -m "not slow" --timeout 120 $PYTEST_TARGETS \
    2>&1 | tee "$OUT/pytest.log" || rc=$?
  return $rc
}

# check_train NAME WORK_DIR ITERS: every logged loss finite, the last iteration reached.
check_train() {
  "$VPY" - "$@" <<'PYEOF'
import glob, json, math, re, statistics, sys
name, work_dir, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json'))
if not files:
    sys.exit(f'{name}: no scalars.json under {work_dir}')
rows = [json.loads(line) for line in open(files[-1]) if line.strip()]
bad, times, last = [], [], 0
for row in rows:
    last = max(last, int(row.get('iter', row.get('step', 0))))
    for key, value in row.items():
        if 'loss' in key and isinstance(value, (int, float)) and not math.isfinite(value):
            bad.append((row.get('iter'), key, value))
    if 'time' in row:
        times.append((int(row.get('iter', 0)), row['time']))
losses = [r.get('loss') for r in rows if 'loss' in r]
print(f'{name}: {len(rows)} log rows, last iter {last}/{iters}, first/last loss '
      f'{losses[:1]} / {losses[-1:]}')
if times:
    steady = [t for i, t in times if i > min(10, iters // 2)] or [t for _, t in times]
    print(f'{name}: median iteration time {statistics.median(steady):.4f} s '
          f'(over {len(steady)} logged values after warm-up; first {times[0][1]:.3f} s)')
# text log as well: MMEngine prints "nan"/"inf" for a non-finite loss. Only loss values count:
# under AMP, grad_norm_* is inf in the first iterations by design (the loss scaler starts too
# high, skips those steps and lowers the scale).
for log in sorted(glob.glob(f'{work_dir}/*/*.log'))[-1:]:
    hits = [l.strip() for l in open(log)
            if any(v.lower() in ('nan', 'inf', '-inf')
                   for v in re.findall(r'\bloss\w*: (\S+)', l))]
    if hits:
        bad.append(('log', log, hits[:3]))
if bad:
    sys.exit(f'{name}: NON-FINITE losses: {bad[:5]}')
if last < iters:
    sys.exit(f'{name}: stopped at iteration {last} of {iters}')
print(f'{name}: OK, all logged losses finite')
PYEOF
}

copy_log() {  # copy_log WORK_DIR NAME: the newest text log of a training run
  local log
  log=$(ls -t "$1"/*/*.log 2>/dev/null | head -1 || true)
  if [ -n "$log" ]; then cp "$log" "$OUT/$2"; fi
}

AMP=(--amp)
[ "$ALLOW_CPU" = 1 ] && ! "$BASE_PY" -c 'import torch,sys; sys.exit(not torch.cuda.is_available())' \
  && AMP=()  # rehearsal on CPU: MMEngine's AmpOptimWrapper needs a GPU

train_tiny() {
  local rc=0
  "$VPY" tools/train.py configs/liftedcl_tiny_demo.py "${AMP[@]}" --work-dir "$WORK/tiny" \
    --cfg-options train_cfg.max_iters="$TINY_ITERS" default_hooks.logger.interval=1 || rc=$?
  copy_log "$WORK/tiny" train_tiny.log
  (( rc == 0 )) || return $rc
  check_train tiny "$WORK/tiny" "$TINY_ITERS"
}

train_r50() {
  local persistent=True
  (( R50_WORKERS == 0 )) && persistent=False
  cat > "$WORK/liftedcl_r50_demo_check.py" <<PYEOF
# ResNet-50 LiftedCL (configs/liftedcl_r50_coco.py) on the shipped demo crops, iteration-based.
_base_ = ['$REPO/configs/liftedcl_r50_coco.py']
train_dataloader = dict(batch_size=$R50_BATCH, num_workers=$R50_WORKERS,
                        persistent_workers=$persistent,
                        dataset=dict(data_root='$REPO/data/demo/coco_human/'))
PYEOF
  if (( R50_REPEAT > 1 )); then
    # The demo has ~80 crops: 2 batches per epoch, and each epoch starts with one worker
    # assembling a whole batch. Repeated, the workers run ahead and the GPU is timed.
    cat >> "$WORK/liftedcl_r50_demo_check.py" <<PYEOF
train_dataloader.update(dataset=dict(
    _delete_=True, type='RepeatDataset', times=$R50_REPEAT,
    dataset=dict(type={{_base_.dataset_type}}, data_root='$REPO/data/demo/coco_human/',
                 ann_file='annotations/train2017.json',
                 data_prefix=dict(img_path='crops/train2017/'),
                 pipeline={{_base_.train_pipeline}})))
PYEOF
  fi
  cat >> "$WORK/liftedcl_r50_demo_check.py" <<PYEOF
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=$R50_ITERS)
param_scheduler = dict(
    generator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0)])
log_processor = dict(by_epoch=False)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=$R50_ITERS, by_epoch=False, max_keep_ckpts=1))
PYEOF
  local opts=()
  # shellcheck disable=SC2206
  [ -n "$R50_CFG_OPTIONS" ] && opts=(--cfg-options $R50_CFG_OPTIONS)
  local rc=0
  "$VPY" tools/train.py "$WORK/liftedcl_r50_demo_check.py" "${AMP[@]}" --work-dir "$WORK/r50" \
    "${opts[@]}" || rc=$?
  copy_log "$WORK/r50" train_r50.log
  (( rc == 0 )) || return $rc
  check_train r50 "$WORK/r50" "$R50_ITERS"
}

run_bench() {
  local rc=0 f
  # shellcheck disable=SC2086
  "$VPY" tools/benchmarks/run_all.py $BENCH_ARGS --out-dir "$WORK/bench" 2>&1 \
    | tee "$OUT/bench.log" || rc=$?
  for f in "$WORK"/bench/latest*.md "$WORK"/bench/latest*.json; do
    [ -f "$f" ] && cp "$f" "$OUT/bench_$(basename "$f")"
  done
  return "$rc"
}

if [ "${1:-}" = __part ]; then
  "$2"
  exit $?
fi

say "repo $REPO, OUT $OUT, work $WORK, budget ${TOTAL_S}s, allow cpu $ALLOW_CPU"
part setup     150 setup_env
part gpu_info   60 gpu_info
part pytest    150 run_pytest
part train_tiny 90 train_tiny
part train_r50 150 train_r50
part bench     240 run_bench

say "results"
grep -h -E "^(torch .* CUDA|device |fp16 matmul|tiny: |r50: )" "$OUT"/device_check.log \
  2>/dev/null || true
tail -n 3 "$OUT/pytest.log" 2>/dev/null || true
cat "$OUT"/bench_latest*.md 2>/dev/null || true
say "summary (rc 124/137: timeout, 125: skipped for lack of time)"
printf '%-12s %5s %6s\n' part rc secs
failed=0
for i in "${!NAMES[@]}"; do
  printf '%-12s %5s %6s\n' "${NAMES[$i]}" "${RCS[$i]}" "${SECS[$i]}"
  [ "${RCS[$i]}" = 0 ] || failed=1
done
say "total $(( $(date +%s) - START )) s; files in $OUT:"
ls -la "$OUT"
sleep 1  # let tee finish writing device_check.log
exit $failed
