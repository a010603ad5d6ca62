"""tools/install.sh --with-tensorboard: the option, the pin, and (when installed) the version.

Running the installer itself is the CI's job (tools/run_tests.sh); here only what is cheap.
"""
import os.path as osp
import re
import subprocess
from importlib import metadata

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INSTALL = osp.join(ROOT, 'tools', 'install.sh')


def _pins():
    pins = {}
    for line in open(osp.join(ROOT, 'requirements', 'constraints.txt')):
        line = line.split('#')[0].strip()
        if line:
            name, spec = re.match(r'([A-Za-z0-9_.\-]+)\s*(.*)', line).groups()
            pins[name.lower()] = spec
    return pins


def test_option_is_parsed_before_anything_is_installed():
    out = subprocess.run(['bash', INSTALL, '--help'], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and '--with-tensorboard' in out.stdout
    bad = subprocess.run(['bash', INSTALL, '--with-tensorbord'], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2
    assert 'unknown option: --with-tensorbord' in bad.stderr and '[install] ' not in bad.stdout


def test_tensorboard_step_is_pinned_and_idempotent():
    assert _pins()['tensorboard'] == '==2.21.0'
    reqs = [line.strip() for line in open(osp.join(ROOT, 'requirements', 'tensorboard.txt'))
            if line.strip() and not line.startswith('#')]
    assert reqs == ['tensorboard']  # the version lives in constraints.txt only
    script = open(INSTALL).read()
    step = script[script.index('if [ "$WITH_TENSORBOARD" = 1 ]'):]
    step = step[:step.index('\nfi\n')]
    assert 'if ! "$PY" -c "import tensorboard' in step  # skipped when already there
    assert '-c "$CONSTRAINTS" -r "$REPO/requirements/tensorboard.txt"' in step
    assert 'LIFTEDCL_WITH_TENSORBOARD' in script


def test_installed_tensorboard_matches_the_pin():
    pytest.importorskip('tensorboard')
    assert '==' + metadata.version('tensorboard') == _pins()['tensorboard']
