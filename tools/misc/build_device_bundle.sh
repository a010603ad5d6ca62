#!/usr/bin/env bash
# Rebuild the offline wheel bundle that tools/misc/device_check.sh installs on the GPU machine
# (Python 3.12, torch 2.11, numpy 2.x, no network). Run it on a machine WITH network access:
#
#   bash tools/misc/build_device_bundle.sh               # -> .gpu/wheels, .gpu/SHA256SUMS, .gpu/README.txt
#   bash tools/misc/build_device_bundle.sh --out DIR     # -> DIR/wheels, DIR/SHA256SUMS, DIR/README.txt
#
# Steps (each printed; a failure names its step):
#   1. find a Python 3.12 interpreter: $PY312, else python3.12 on PATH, else ~/.pyenv/versions/3.12*;
#   2. pip download --no-deps --only-binary=:all: --python-version 3.12 of the pinned wheels, and
#      check each file's name and SHA256 against the pins below (the files on PyPI do not change);
#   3. a throwaway venv in /tmp of that interpreter with numpy/Cython/setuptools/wheel pinned,
#      and the pinned sdists of xtcocotools 1.14.3 and mmcv 2.1.0 (SHA256 checked);
#   4. xtcocotools 1.14.3 for cp312, compiled from its sdist against numpy 2.x (PyPI has no cp312
#      wheel of it). As built on 2026-11-26 (and by default here) its mask functions area, toBbox,
#      decode and iou raise AttributeError "numpy has no attribute NPY_OWNDATA" under numpy 2
#      (import, COCO() and encode work; this repository uses only xtcocotools.coco.COCO). With
#      --fix-xtcocotools, _mask.pyx is changed to np.NPY_ARRAY_OWNDATA first (as pycocotools did),
#      and they work; remove an xtcocotools wheel already in the output folder to rebuild it;
#   5. mmcv 2.1.0 without ops (MMCV_WITH_OPS=0) with three changes made here to the unpacked sdist
#      (each checked; the step fails if the source is not the expected one):
#        - distribution name kept "mmcv" (setup.py would say "mmcv-lite" without ops);
#        - mmcv/_ext.py added, a stub whose every op raises NotImplementedError when called, so that
#          `import mmcv.ops` works (mmpose.models imports MultiScaleDeformableAttention eagerly);
#        - mmcv/image/photometric.py adjust_hue: np.uint8(hue_factor * 255) ->
#          np.uint8(int(hue_factor * 255) % 256) (numpy 2, NEP 50, raises OverflowError on a
#          negative hue; the new form gives numpy 1's wrap-around value);
#   6. SHA256SUMS and README.txt (README.txt is kept as it is when nothing was built).
# Idempotent: a wheel already in the output folder is kept (a downloaded one only if its SHA256 is
# the pinned one) and nothing is rebuilt for it. The built wheels are not byte-reproducible
# (timestamps, compiler); their file lists and the patched files are what stays the same.
#
# Environment: PY312 (interpreter), PIP_INDEX_URL (a mirror of PyPI; default https://pypi.org/simple),
# BUNDLE_KEEP_WORK=1 (keep the /tmp work folder with the venv and the unpacked sources).
# The pip configuration of this machine (find-links, extra indexes, constraints) is ignored.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT_DIR="$REPO/.gpu"
KEEP_WORK="${BUNDLE_KEEP_WORK:-0}"
FIX_XTCOCO=0
while (( $# )); do
  case "$1" in
    --out) OUT_DIR="${2:?--out needs a folder}"; shift 2 ;;
    --out=*) OUT_DIR="${1#--out=}"; shift ;;
    --keep-work) KEEP_WORK=1; shift ;;
    --fix-xtcocotools) FIX_XTCOCO=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_device_bundle: unknown argument '$1' (use --out DIR, --keep-work, --fix-xtcocotools)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
WHEELS="$OUT_DIR/wheels"
T0=$(date +%s)
STEP="start"
WORK=""

say() { echo "[build_device_bundle $(date -u +%H:%M:%S) +$(( $(date +%s) - T0 ))s] $*"; }
step() { STEP="$1"; say "=== step: $1"; }
die() { echo "build_device_bundle: ERROR in step '$STEP': $*" >&2; exit 1; }
on_exit() {
  local rc=$?
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$KEEP_WORK" = 1 ]; then say "work folder kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  if (( rc != 0 )); then
    echo "build_device_bundle: FAILED in step '$STEP' (exit status $rc)" >&2
  fi
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------------
# Pins. Downloaded wheels: requirement, file name, SHA256 (as in the bundle made on 2026-11-26).
DOWNLOADS=(
  "addict==2.4.0 addict-2.4.0-py3-none-any.whl 249bb56bbfd3cdc2a004ea0ff4c2b6ddc84d53bc2194761636eb314d5cfa5dfc"
  "importlib_metadata==10.2.0 importlib_metadata-10.2.0-py3-none-any.whl c7a4bf1c7479601f6b8e437cfc14f4f77028ba62a8f34ae95cd93d9774dfba51"
  "json_tricks==3.17.3 json_tricks-3.17.3-py2.py3-none-any.whl 8ba11cb66a09532945c05c7374a72b857dfc3870b2d145125edd508f4027dff9"
  "lazy_importer==0.1.0 lazy_importer-0.1.0-py3-none-any.whl bd93fab7bef18e842eea02b839410954d37889140dc64ca4d9680aec6880c739"
  "mat4py==0.6.0 mat4py-0.6.0-py2.py3-none-any.whl 1c15f39c7df092f01506044f65999fc9c7d71306f8fc850b1003e15ed64c6bae"
  "mmdet==3.3.0 mmdet-3.3.0-py3-none-any.whl 2e23e291281ac57e7dccf8678e957da45fbe560ce78a1f5ded6afeccd3730f17"
  "mmengine==0.10.7 mmengine-0.10.7-py3-none-any.whl 262ac976a925562f78cd5fd14dd1bc9b680ed0aa81f0d85b723ef782f99c54ee"
  "mmpose==1.3.2 mmpose-1.3.2-py2.py3-none-any.whl 70a77b4e5fc96a9295012ab0505b975f192b22372b2f59e3110200c1462576b6"
  "mmpretrain==1.2.0 mmpretrain-1.2.0-py2.py3-none-any.whl 96156327c509cbf17fdc5867f7bc89142df6f63be38ecd67e91b41dc5e538933"
  "model-index==0.1.11 model_index-0.1.11-py3-none-any.whl a2a4d4431cd44e571d31e223cc4b0432663a62689de453bdb666e56a514b0e07"
  "modelindex==0.0.2 modelindex-0.0.2-py3-none-any.whl ad6cfabccaa1ae03ab088689a69707d31643c179accc3d57163112312fe5e3d7"
  "munkres==3.0.0 munkres-3.0.0-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl d450e1b471678ea2f811869779d15944e08e59185112676072d1a76771c95b61"
  "ordered-set==4.1.0 ordered_set-4.1.0-py3-none-any.whl 046e1132c71fcf3330438a539928932caf51ddbc582496833e23de611de14562"
  "platformdirs==4.14.8 platformdirs-4.14.8-py3-none-any.whl 1e34af590de4d978631b751eb2202f2fee4497537a17c1720b12fcf57b331392"
  "pycocotools==2.0.11 pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl a82d1c9ed83f75da0b3f244f2a3cf559351a283307bd9b79a4ee2b93ab3231dd"
  "setuptools==80.10.2 setuptools-80.10.2-py3-none-any.whl 95b30ddfb717250edb492926c92b5221f7ef3fbcc2b07579bcd4a27da21d0173"
  "shapely==2.2.0 shapely-2.2.0-cp312-cp312-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl 650a5f4d8a8e3c96982079d8c99b6ddbe6602bbd1e34c75c2b95dbc0d28ac997"
  "termcolor==3.3.0 termcolor-3.3.0-py3-none-any.whl cf642efadaf0a8ebbbf4bc7a31cec2f9b5f21a9f726f4ccbb08192c9c26f43a5"
  "terminaltables==3.1.10 terminaltables-3.1.10-py2.py3-none-any.whl e4fdc4179c9e4aab5f674d80f09d76fa436b96fdc698a8505e0a36bf0804a874"
  "yapf==0.43.0 yapf-0.43.0-py3-none-any.whl 224faffbc39c428cb095818cf6ef5511fdab6f7430a10783fdfb292ccf2852ca"
  "zipp==4.1.2 zipp-4.1.2-py3-none-any.whl b30cb6cd253122169c47de245ca24a86bac2a5d3802ba15bf7ba6414eb9e144d"
)
# Platform tags the binary wheels above carry (pip also accepts older manylinux tags from these).
PLATFORMS=(manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 manylinux_2_28_x86_64)
# Build tools of the throwaway venv (as used for the 2026-11-26 bundle).
BUILD_REQS=(numpy==2.5.2 Cython==3.3.1 setuptools==80.10.2 wheel==0.48.0)
# Sources: requirement, file name, SHA256.
SDISTS=(
  "xtcocotools==1.14.3 xtcocotools-1.14.3.tar.gz 6434382784d206204d2a1b491dba359ff3464a2b9eb5890fbc0d868cad4e810f"
  "mmcv==2.1.0 mmcv-2.1.0.tar.gz d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f"
)
XTCOCO_WHL=xtcocotools-1.14.3-cp312-cp312-linux_x86_64.whl
MMCV_WHL=mmcv-2.1.0-py2.py3-none-any.whl

# pip: PyPI (or the mirror in PIP_INDEX_URL) only, not this machine's find-links / constraints.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX PIP_REQUIRE_VIRTUALENV \
  PIP_ONLY_BINARY PIP_NO_BINARY PIP_TARGET PIP_PREFIX PIP_USER
export PIP_INDEX_URL="${PIP_INDEX_URL:-https://pypi.org/simple}"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------------
step "find a Python 3.12 interpreter"
PY=""
candidates=()
[ -n "${PY312:-}" ] && candidates+=("$PY312")
command -v python3.12 >/dev/null 2>&1 && candidates+=("$(command -v python3.12)")
for p in $(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python 2>/dev/null | sort -V -r); do
  candidates+=("$p")
done
for c in "${candidates[@]}"; do
  # a pyenv shim exists even when 3.12 is not selected: it must actually run and be 3.12
  if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then
    PY="$c"; break
  fi
  say "not usable as Python 3.12: $c"
done
if [ -z "$PY" ]; then
  [ -n "${PY312:-}" ] && die "PY312=$PY312 is not a working Python 3.12 interpreter"
  die "no Python 3.12 interpreter found (set PY312=/path/to/python3.12, put python3.12 on PATH, \
or install one under ~/.pyenv/versions/3.12.*)"
fi
PY_VERSION="$("$PY" -c 'import platform; print(platform.python_version())')"
say "Python 3.12: $PY ($PY_VERSION); pip index: $PIP_INDEX_URL; output: $OUT_DIR"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip (python3.12 -m ensurepip?)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null || die "$PY lacks the venv/ensurepip modules"

mkdir -p "$WHEELS"
WORK="$(mktemp -d /tmp/liftedcl_bundle_build.XXXXXX)"

# ---------------------------------------------------------------------------------------------
step "download the pinned wheels"
todo=()
for entry in "${DOWNLOADS[@]}"; do
  read -r req file sha <<<"$entry"
  if [ -f "$WHEELS/$file" ]; then
    if [ "$(sha_of "$WHEELS/$file")" = "$sha" ]; then
      say "present, SHA256 ok: $file"; continue
    fi
    say "present but SHA256 differs, downloading again: $file"
    rm -f "$WHEELS/$file"
  fi
  todo+=("$req")
done
if (( ${#todo[@]} )); then
  plat_args=()
  for p in "${PLATFORMS[@]}"; do plat_args+=(--platform "$p"); done
  say "pip download ${todo[*]}"
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 "${plat_args[@]}" \
    -d "$WORK/download" "${todo[@]}"
  for entry in "${DOWNLOADS[@]}"; do
    read -r req file sha <<<"$entry"
    [ -f "$WHEELS/$file" ] && continue
    [ -f "$WORK/download/$file" ] || die "pip did not download $file for $req (got: $(ls "$WORK/download" | tr '\n' ' '))"
    got="$(sha_of "$WORK/download/$file")"
    [ "$got" = "$sha" ] || die "$file: SHA256 $got, expected $sha"
    mv "$WORK/download/$file" "$WHEELS/$file"
    say "downloaded, SHA256 ok: $file"
  done
else
  say "all ${#DOWNLOADS[@]} downloaded wheels present"
fi

# ---------------------------------------------------------------------------------------------
VENV="$WORK/venv"
VPY="$VENV/bin/python"
SRC="$WORK/src"
need_build=0
[ -f "$WHEELS/$XTCOCO_WHL" ] || need_build=1
[ -f "$WHEELS/$MMCV_WHL" ] || need_build=1
if (( need_build )); then
  step "throwaway build venv ($VENV) and the sdists"
  "$PY" -m venv "$VENV"
  "$VPY" -m pip install -q --only-binary=:all: "${BUILD_REQS[@]}"
  "$VPY" -m pip list --format=freeze
  # --no-build-isolation: pip runs each setup.py (egg_info) here to read its name; MMCV_WITH_OPS
  # must stay unset for that, or mmcv's metadata says "mmcv-lite" and pip rejects it.
  (unset MMCV_WITH_OPS; "$VPY" -m pip download --no-deps --no-binary=:all: --no-build-isolation \
     -d "$SRC" $(for e in "${SDISTS[@]}"; do read -r r _ <<<"$e"; echo "$r"; done))
  for entry in "${SDISTS[@]}"; do
    read -r req file sha <<<"$entry"
    [ -f "$SRC/$file" ] || die "pip did not download $file for $req"
    got="$(sha_of "$SRC/$file")"
    [ "$got" = "$sha" ] || die "$file: SHA256 $got, expected $sha"
    say "sdist SHA256 ok: $file"
  done
fi

# ---------------------------------------------------------------------------------------------
if [ -f "$WHEELS/$XTCOCO_WHL" ]; then
  say "present, not rebuilt: $XTCOCO_WHL"
else
  step "build $XTCOCO_WHL from the sdist against numpy $("$VPY" -c 'import numpy; print(numpy.__version__)')"
  tar -xzf "$SRC/xtcocotools-1.14.3.tar.gz" -C "$WORK"
  XT_SRC="$WORK/xtcocotools-1.14.3"
  if [ "$FIX_XTCOCO" = 1 ]; then
    n=$(grep -c 'np\.NPY_OWNDATA' "$XT_SRC/xtcocotools/_mask.pyx" || true)
    [ "$n" = 4 ] || die "_mask.pyx: $n uses of np.NPY_OWNDATA, expected 4 (unknown source)"
    sed -i 's/np\.NPY_OWNDATA/np.NPY_ARRAY_OWNDATA/g' "$XT_SRC/xtcocotools/_mask.pyx"
    say "--fix-xtcocotools: _mask.pyx np.NPY_OWNDATA -> np.NPY_ARRAY_OWNDATA (4 places)"
  fi
  "$VPY" -m pip wheel --no-deps --no-build-isolation -w "$WORK/dist" "$XT_SRC"
  [ -f "$WORK/dist/$XTCOCO_WHL" ] || die "expected $XTCOCO_WHL, got: $(ls "$WORK/dist" | tr '\n' ' ')"
  step "check $XTCOCO_WHL (install into the build venv, import the compiled _mask)"
  "$VPY" -m pip install -q --no-deps --no-index "$WORK/dist/$XTCOCO_WHL"
  (cd "$WORK" && "$VPY" -W ignore - "$FIX_XTCOCO" <<'PYEOF'
import sys
import numpy as np
from xtcocotools import _mask
rle = _mask.encode(np.asfortranarray(np.eye(4, dtype=np.uint8)[:, :, None]))
print('xtcocotools._mask imports and encodes with numpy', np.__version__)
try:
    assert float(_mask.area(rle)[0]) == 4.0
    print('xtcocotools._mask.area OK')
except AttributeError as e:  # np.NPY_OWNDATA, looked up at run time, is gone in numpy 2
    if sys.argv[1] == '1':
        raise
    print(f'WARNING: xtcocotools._mask.area/toBbox/decode/iou fail under numpy 2 ({e}); '
          'as in the 2026-11-26 bundle; --fix-xtcocotools makes them work')
PYEOF
  )
  cp "$WORK/dist/$XTCOCO_WHL" "$WHEELS/$XTCOCO_WHL"
fi

# ---------------------------------------------------------------------------------------------
if [ -f "$WHEELS/$MMCV_WHL" ]; then
  say "present, not rebuilt: $MMCV_WHL"
else
  step "unpack mmcv 2.1.0 and apply the three changes"
  tar -xzf "$SRC/mmcv-2.1.0.tar.gz" -C "$WORK"
  MMCV_SRC="$WORK/mmcv-2.1.0"
  [ -f "$MMCV_SRC/setup.py" ] || die "no setup.py in the unpacked mmcv sdist"
  [ ! -e "$MMCV_SRC/mmcv/_ext.py" ] || die "mmcv/_ext.py already exists in the sdist"
  cat > "$MMCV_SRC/mmcv/_ext.py" <<'PYEOF'
"""Stand-in for mmcv's compiled ops: this mmcv 2.1.0 wheel was built with MMCV_WITH_OPS=0.

MMPose 1.3.2 imports ``mmcv.ops`` eagerly (``mmpose.models`` -> EDPoseHead ->
``MultiScaleDeformableAttention``), so a plain mmcv-lite cannot import ``mmpose.models``. Every op
name exists here so that ``import mmcv.ops`` succeeds; calling an op raises NotImplementedError.
Made for liftedcl_mm's offline GPU check (.gpu/wheels), which uses no mmcv op.
"""


def get_compiler_version():
    return 'none (mmcv built with MMCV_WITH_OPS=0, ops are stubs)'


def get_compiling_cuda_version():
    return 'none (mmcv built with MMCV_WITH_OPS=0, ops are stubs)'


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def _missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv._ext.{name}: this mmcv 2.1.0 was built without ops (MMCV_WITH_OPS=0); '
            'its ops are stubs')

    _missing.__name__ = name
    return _missing
PYEOF
  say "added mmcv/_ext.py (stub)"
  # replace OLD by NEW in FILE; exactly COUNT occurrences of OLD must be there
  "$PY" - "$MMCV_SRC" <<'PYEOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1])
patches = [
    ('setup.py',
     "    name='mmcv' if os.getenv('MMCV_WITH_OPS', '1') == '1' else 'mmcv-lite',\n",
     "    name='mmcv',  # liftedcl_mm device bundle: keep the name without ops\n", 1),
    ('mmcv/image/photometric.py',
     "            np_h += np.uint8(hue_factor * 255)\n",
     "            np_h += np.uint8(int(hue_factor * 255) % 256)"
     "  # numpy 2 (NEP 50): wrap as numpy 1 did\n", 1),
    ('mmcv/image/photometric.py',
     "            h += np.uint8(hue_factor * 255)\n",
     "            h += np.uint8(int(hue_factor * 255) % 256)"
     "  # numpy 2 (NEP 50): wrap as numpy 1 did\n", 1),
]
for rel, old, new, count in patches:
    path = root / rel
    text = path.read_text()
    found = text.count(old)
    if found != count:
        sys.exit(f'patch of {rel} does not apply: {found} occurrence(s) of {old.strip()!r}, '
                 f'expected {count} (not the mmcv 2.1.0 source this script knows)')
    path.write_text(text.replace(old, new))
    print(f'patched {rel}: {old.strip()!r} -> {new.strip()!r}')
text = (root / 'mmcv/image/photometric.py').read_text()
if 'np.uint8(hue_factor * 255)' in text:
    sys.exit('photometric.py: an unpatched np.uint8(hue_factor * 255) is left')
PYEOF
  step "build $MMCV_WHL (MMCV_WITH_OPS=0)"
  rm -rf "$MMCV_SRC/build"
  MMCV_WITH_OPS=0 "$VPY" -m pip wheel --no-deps --no-build-isolation -w "$WORK/dist" "$MMCV_SRC"
  [ -f "$WORK/dist/$MMCV_WHL" ] || die "expected $MMCV_WHL, got: $(ls "$WORK/dist" | tr '\n' ' ')"
  step "check $MMCV_WHL (name, stub, patched adjust_hue, no compiled files)"
  "$PY" - "$WORK/dist/$MMCV_WHL" <<'PYEOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
meta = z.read('mmcv-2.1.0.dist-info/METADATA').decode()
assert 'Name: mmcv\n' in meta, 'distribution name is not mmcv'
assert 'mmcv/_ext.py' in names, 'mmcv/_ext.py missing'
assert b'NotImplementedError' in z.read('mmcv/_ext.py')
photo = z.read('mmcv/image/photometric.py').decode()
assert photo.count('np.uint8(int(hue_factor * 255) % 256)') == 2, 'adjust_hue not patched'
compiled = [n for n in names if n.endswith(('.so', '.pyd'))]
assert not compiled, compiled
print(f'{len(names)} files; Name: mmcv; _ext.py stub; adjust_hue patched; no compiled files')
PYEOF
  cp "$WORK/dist/$MMCV_WHL" "$WHEELS/$MMCV_WHL"
fi

# ---------------------------------------------------------------------------------------------
step "write SHA256SUMS and README.txt"
expected=("$XTCOCO_WHL" "$MMCV_WHL")
for entry in "${DOWNLOADS[@]}"; do read -r _ file _ <<<"$entry"; expected+=("$file"); done
for f in "${expected[@]}"; do [ -f "$WHEELS/$f" ] || die "missing $WHEELS/$f"; done
extra="$(cd "$WHEELS" && ls | LC_ALL=C sort | while read -r f; do
  printf '%s\n' "${expected[@]}" | grep -qxF "$f" || echo "$f"; done)"
[ -z "$extra" ] || say "WARNING: files in $WHEELS that are not part of the bundle (not in SHA256SUMS; device_check.sh installs every *.whl): $extra"
(cd "$WHEELS" && printf '%s\n' "${expected[@]}" | LC_ALL=C sort | xargs sha256sum) > "$OUT_DIR/SHA256SUMS"
if (( ! need_build )) && [ -f "$OUT_DIR/README.txt" ]; then
  say "nothing built: README.txt kept as it is"
  cat "$OUT_DIR/SHA256SUMS"
  say "done: ${#expected[@]} wheels in $WHEELS; SHA256SUMS in $OUT_DIR ($(( $(date +%s) - T0 )) s)"
  STEP="done"
  exit 0
fi
numpy_v="$( [ -x "$VPY" ] && "$VPY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo "2.5.2 (pinned)")"
if [ "$FIX_XTCOCO" = 1 ]; then
  xt_note="_mask.pyx np.NPY_OWNDATA -> np.NPY_ARRAY_OWNDATA (--fix-xtcocotools): mask functions work"
else
  xt_note="unchanged: its mask functions area/toBbox/decode/iou raise AttributeError (np.NPY_OWNDATA)
      under numpy 2; import, COCO() and encode work (--fix-xtcocotools changes that)"
fi
glibc="$("$PY" -c 'import platform; print(" ".join(platform.libc_ver()))')"
cat > "$OUT_DIR/README.txt" <<EOF
Offline wheel bundle for tools/misc/device_check.sh (GPU machine: Python 3.12, torch 2.11.0+cu130,
numpy 2.5.2, opencv-python-headless, scipy, matplotlib already there; no network).
Made by tools/misc/build_device_bundle.sh (run it again to rebuild; it skips wheels present).
Ignored by git when in .gpu/ (/.gpu/ in .git/info/exclude). Install: pip install --no-index --no-deps wheels/*.whl

Downloaded (pip download --no-deps --python-version 3.12 --only-binary=:all:, SHA256 pinned):
mmengine 0.10.7, mmpretrain 1.2.0, mmpose 1.3.2, mmdet 3.3.0 (mmpose.models imports mmdet.utils in
rtmo_head), addict, yapf, platformdirs, termcolor, mat4py, modelindex + model-index, ordered-set,
json-tricks, munkres, pycocotools, shapely, terminaltables, importlib_metadata 10.2.0 +
lazy-importer + zipp, setuptools 80.10.2 (pkg_resources, used by mmengine.utils.package_utils;
torch's setuptools 81 lacks it).

Built with Python $PY_VERSION ($PY), $glibc,
${BUILD_REQS[*]}:
  $XTCOCO_WHL  (no cp312 wheel on PyPI; from the sdist, compiled against numpy $numpy_v)
      $xt_note
  $MMCV_WHL  from the 2.1.0 sdist, MMCV_WITH_OPS=0, with 3 changes:
      - distribution name kept "mmcv" (setup.py would say "mmcv-lite")
      - mmcv/_ext.py added: a stub whose every op raises NotImplementedError when called, so that
        \`import mmcv.ops\` works (mmpose.models imports MultiScaleDeformableAttention eagerly)
      - mmcv/image/photometric.py adjust_hue: np.uint8(hue_factor * 255) ->
        np.uint8(int(hue_factor * 255) % 256): numpy 2 (NEP 50) raises OverflowError on a
        negative hue; the new form gives numpy 1's wrap-around value exactly.
  (A wheel that was already present was kept, not rebuilt; the lines above describe this run.)
Not carried: chumpy (not imported by anything used), numpy 1.26 (scipy 1.18 on the image needs
numpy >= 2), opencv-python, mmcv ops.
EOF
cat "$OUT_DIR/SHA256SUMS"
say "done: ${#expected[@]} wheels in $WHEELS; SHA256SUMS and README.txt in $OUT_DIR ($(( $(date +%s) - T0 )) s)"
STEP="done"
