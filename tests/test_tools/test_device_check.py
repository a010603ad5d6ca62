"""The GPU device check's training check (tools/misc/device_check.sh, check_train), run here on
fake work dirs: it must fail on a non-finite loss and not on AMP's inf gradient norms."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _check_train_source() -> str:
    script = open(osp.join(ROOT, 'tools', 'misc', 'device_check.sh')).read()
    match = re.search(r"check_train\(\) \{\n  \"\$VPY\" - \"\$@\" <<'PYEOF'\n(.*?)\nPYEOF",
                      script, re.S)
    assert match, 'check_train not found in device_check.sh'
    return match.group(1)


def _work_dir(tmp_path, lines, rows):
    run = tmp_path / 'work' / '20261127_000000'
    (run / 'vis_data').mkdir(parents=True)
    (run / '20261127_000000.log').write_text('\n'.join(lines) + '\n')
    (run / 'vis_data' / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in rows) + '\n')
    return str(tmp_path / 'work')


def _run(work_dir, iters=2):
    return subprocess.run([sys.executable, '-', 'r50', work_dir, str(iters)],
                          input=_check_train_source(), capture_output=True, text=True)


@pytest.mark.parametrize('bad_line', [
    'Iter(train) [2/2]  grad_norm_discriminator: 0.4  loss: nan  loss_inv: 2.5',
    'Iter(train) [2/2]  loss: 8.0  loss_d_fake: inf  d_acc: 0.5',
])
def test_non_finite_loss_fails(tmp_path, bad_line):
    rows = [dict(iter=1, loss=8.0, time=0.1), dict(iter=2, loss=8.0, time=0.1)]
    work = _work_dir(tmp_path, ['Iter(train) [1/2]  loss: 8.0  loss_inv: 2.5', bad_line], rows)
    result = _run(work)
    assert result.returncode != 0 and 'NON-FINITE' in result.stderr


def test_amp_inf_gradient_norm_is_not_a_non_finite_loss(tmp_path):
    lines = ['Iter(train) [1/2]  grad_norm_discriminator: inf  loss: 8.0  loss_inv: 2.5',
             'Iter(train) [2/2]  grad_norm_discriminator: 0.43  loss: 8.1  loss_inv: 2.6']
    rows = [dict(iter=1, loss=8.0, grad_norm_discriminator=float('inf'), time=0.1),
            dict(iter=2, loss=8.1, grad_norm_discriminator=0.43, time=0.1)]
    result = _run(_work_dir(tmp_path, lines, rows))
    assert result.returncode == 0, result.stderr
    assert 'OK, all logged losses finite' in result.stdout
    # and the last iteration must be reached
    assert _run(_work_dir(tmp_path / 'short', lines, rows), iters=5).returncode != 0
