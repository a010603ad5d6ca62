#!/usr/bin/env bash
# Install liftedcl_mm and its pinned OpenMMLab stack into a project virtualenv.
#
#   bash tools/install.sh            # creates ./.venv (or $LIFTEDCL_VENV) and installs everything
#   bash tools/install.sh --with-tensorboard   # ... plus TensorBoard (or LIFTEDCL_WITH_TENSORBOARD=1)
#
# Idempotent: a second run only checks what is there. The full mmcv 2.1.0 (with ops) has no wheel
# for this torch, so it is built from the sdist once (~15 min on 2 cores) and cached in
# $LIFTEDCL_CACHE (default ~/.cache/liftedcl_mm); a matching wheel in ../shared/wheels is used too.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFTEDCL_VENV:-$REPO/.venv}"
CACHE="${LIFTEDCL_CACHE:-$HOME/.cache/liftedcl_mm}"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS="$REPO/requirements/constraints.txt"
SHARED_WHEELS="${LIFTEDCL_SHARED_WHEELS:-$REPO/../shared/wheels}"
MMCV_VERSION=2.1.0
TORCH_VERSION=2.14.1
WITH_TENSORBOARD="${LIFTEDCL_WITH_TENSORBOARD:-0}"
for arg in "$@"; do
  case "$arg" in
    --with-tensorboard) WITH_TENSORBOARD=1 ;;
    -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "[install] unknown option: $arg (known: --with-tensorboard)" >&2; exit 2 ;;
  esac
done

STEP="start"
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "[install] FAILED at step: $STEP (exit $rc)" >&2; fi' EXIT
step() { STEP="$1"; echo "[install] $1"; }

step "create virtualenv $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# This machine's pip config lists local indexes that lack most projects; pip warns per project.
vpip() { "${PIP[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }
mkdir -p "$CACHE/wheels"

step "build tools (pip, setuptools<81 with pkg_resources, wheel, ninja)"
vpip install -q -c "$CONSTRAINTS" "pip>=23" "setuptools>=77,<81" wheel ninja "numpy<2" packaging

step "torch $TORCH_VERSION + torchvision"
if ! "$PY" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  vpip install -q -c "$CONSTRAINTS" "torch==$TORCH_VERSION" "torchvision==0.29.1"
fi

mmcv_ok() {
  "$PY" - <<PYEOF 2>/dev/null
import mmcv, mmcv.ops, sys
sys.exit(mmcv.__version__ != '$MMCV_VERSION')
PYEOF
}

step "full mmcv $MMCV_VERSION with ops"
if ! mmcv_ok; then
  PYTAG=$("$PY" -c "import sys; print(f'cp{sys.version_info.major}{sys.version_info.minor}')")
  # A cached wheel is only valid for the torch it was built against: key the cache by it.
  TORCH_FULL=$("$PY" -c "import torch; print(torch.__version__.replace('+', '_'))")
  CACHED="$CACHE/wheels/torch-$TORCH_FULL/mmcv-$MMCV_VERSION-$PYTAG-$PYTAG-linux_$(uname -m).whl"
  SHARED="$SHARED_WHEELS/mmcv-$MMCV_VERSION-$PYTAG-$PYTAG-linux_$(uname -m).whl"
  if [ ! -f "$CACHED" ] && [ -f "$SHARED" ] && [ "${TORCH_FULL%%_*}" = "$TORCH_VERSION" ] \
     && (cd "$SHARED_WHEELS" && sha256sum --quiet -c <(grep "$(basename "$SHARED")" SHA256SUMS)); then
    echo "[install] using the prebuilt wheel $SHARED (checksum verified)"
    mkdir -p "$(dirname "$CACHED")"; cp "$SHARED" "$CACHED"
  fi
  if [ ! -f "$CACHED" ]; then
    STEP="build mmcv $MMCV_VERSION from source (~15 min on 2 cores)"
    echo "[install] $STEP"
    BUILD="$(mktemp -d)"
    vpip download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    # torch 2.14's headers need C++20.
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      vpip wheel --no-deps --no-build-isolation -w "$BUILD/dist" .)
    mkdir -p "$(dirname "$CACHED")"
    cp "$BUILD"/dist/mmcv-$MMCV_VERSION-*.whl "$CACHED.tmp" && mv "$CACHED.tmp" "$CACHED"
    rm -rf "$BUILD"
  fi
  STEP="install mmcv wheel $CACHED"
  vpip install -q --no-deps --force-reinstall "$CACHED"
  vpip install -q -c "$CONSTRAINTS" addict mmengine==0.10.7 "opencv-python<4.11" pyyaml yapf packaging pillow
  mmcv_ok || { echo "[install] mmcv $MMCV_VERSION installed but 'import mmcv.ops' fails" >&2; exit 1; }
fi

step "chumpy (needs --no-build-isolation)"
if ! "$PY" -c "import chumpy" 2>/dev/null; then
  vpip install -q -c "$CONSTRAINTS" --no-build-isolation chumpy==0.70
fi

step "OpenMMLab stack (mmengine, mmpretrain, mmdet, mmpose) and test tools"
vpip install -q -c "$CONSTRAINTS" -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt"

step "openmim (for 'mim train liftedcl_mm ...')"
vpip install -q -c "$CONSTRAINTS" openmim==0.3.9

if [ "$WITH_TENSORBOARD" = 1 ]; then
  step "tensorboard (--with-tensorboard; the TensorboardVisBackend of configs/_base_/default_runtime.py)"
  if ! "$PY" -c "import tensorboard, torch.utils.tensorboard" 2>/dev/null; then
    vpip install -q -c "$CONSTRAINTS" -r "$REPO/requirements/tensorboard.txt"
  fi
fi

step "liftedcl_mm (editable)"
vpip install -q -c "$CONSTRAINTS" --no-deps --no-build-isolation -e "$REPO"
# MIM looks for <site-packages>/liftedcl_mm/.mim; a PEP 660 editable install has no such folder, so
# link the package there (same files: imports keep resolving to this checkout).
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
ln -sfn "$REPO/liftedcl_mm" "$SITE/liftedcl_mm"

step "check the stack imports"
"$PY" - <<'PYEOF'
import numpy, torch, torchvision, mmcv, mmcv.ops, mmengine, mmpretrain, mmdet, mmpose
import mmpose.models, mmpretrain.models
from xtcocotools.coco import COCO  # breaks under numpy 2: see requirements/constraints.txt
import liftedcl_mm
assert numpy.__version__.startswith('1.'), numpy.__version__
try:  # optional (--with-tensorboard): the event writer MMEngine's TensorboardVisBackend uses
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    import tensorboard
    print('[install] tensorboard', tensorboard.__version__)
except ImportError:
    pass
print('[install] ok: torch', torch.__version__, 'torchvision', torchvision.__version__,
      'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__, 'mmpretrain',
      mmpretrain.__version__, 'mmpose', mmpose.__version__, 'mmdet', mmdet.__version__,
      'numpy', numpy.__version__)
PYEOF
STEP="done"
echo "[install] done. Activate with: source $VENV/bin/activate"
