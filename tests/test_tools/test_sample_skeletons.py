import os.path as osp
import subprocess
import sys

import numpy as np

from liftedcl_mm.datasets.skeleton_prior import sample_skeletons

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_cli_writes_skeletons_and_plot(tmp_path):
    out, vis = tmp_path / 'skel.npy', tmp_path / 'skel.png'
    proc = subprocess.run([
        sys.executable, osp.join(ROOT, 'tools/misc/sample_skeletons.py'), '--num', '300',
        '--seed', '5', '--out', str(out), '--vis', str(vis), '--vis-num', '3'
    ], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    arr = np.load(out, allow_pickle=False)
    assert arr.shape == (300, 17, 3) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, sample_skeletons(300, seed=5))
    assert vis.read_bytes().startswith(b'\x89PNG')
    assert not list(tmp_path.glob('.tmp_*'))
