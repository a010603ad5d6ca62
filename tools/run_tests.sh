#!/usr/bin/env bash
# Install (idempotent) and run the whole test suite. Extra arguments go to pytest.
#   bash tools/run_tests.sh            # everything, slow tests included
#   bash tools/run_tests.sh -m "not slow"
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFTEDCL_VENV:-$REPO/.venv}"
# --with-tensorboard: the TensorBoard event-file test must run, not skip, in CI too.
bash "$REPO/tools/install.sh" --with-tensorboard
cd "$REPO"
set +e
"$VENV/bin/python" -m pytest tests -ra "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "[tests] pytest collected no tests: treated as a failure" >&2
  exit 1
fi
exit $rc
