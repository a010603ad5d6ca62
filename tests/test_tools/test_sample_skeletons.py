import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from liftedcl_mm.datasets.skeleton_prior import load_skeleton_file, sample_skeletons
from liftedcl_mm.skeleton import (H36M_BONE_COLORS, H36M_BONES, H36M_JOINT_NAMES,
                                  PRIOR_STAT_TARGETS)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/misc/sample_skeletons.py')
sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
import sample_skeletons as tool  # noqa: E402


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          timeout=120)


def _main(capsys, *args):
    """Run the tool in this process (fast); returns its stdout."""
    assert tool.main(list(args)) == 0
    return capsys.readouterr().out


def test_cli_writes_skeletons_and_plot(tmp_path):
    out, vis = tmp_path / 'skel.npy', tmp_path / 'skel.png'
    proc = _run('--num', '300', '--seed', '5', '--out', str(out), '--vis', str(vis),
                '--vis-num', '3')
    assert proc.returncode == 0, proc.stderr
    arr = np.load(out, allow_pickle=False)
    assert arr.shape == (300, 17, 3) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, sample_skeletons(300, seed=5))
    assert vis.read_bytes().startswith(b'\x89PNG')
    assert not list(tmp_path.glob('.tmp_*'))
    with pytest.raises(SystemExit):
        tool.parse_args(['--num', '5'])  # nothing to do


def _stats_lines(stdout):
    labels = [t[1] for t in PRIOR_STAT_TARGETS]
    return {label: line for line in stdout.splitlines() for label in labels
            if line.startswith(label)}


def test_cli_stats_pass_for_the_sampler_and_fail_uniform(capsys):
    out = _main(capsys, '--num', '4000', '--seed', '0', '--stats')
    lines = _stats_lines(out)
    assert len(lines) == len(PRIOR_STAT_TARGETS)
    assert all(line.endswith('PASS') for line in lines.values()), out
    assert 'sampled: 4000 skeletons, seed 0' in out
    # The paper's literal uniform sampling: extreme limbs (the thigh median fails).
    out = _main(capsys, '--num', '4000', '--uniform', '--stats')
    lines = _stats_lines(out)
    assert lines['thigh angle from trunk-down, median'].endswith('FAIL'), out
    assert lines['nose in front, left hip & shoulder on the left'].endswith('PASS')


def test_cli_from_file_converts_and_flags_a_mirror(tmp_path, capsys):
    ours = sample_skeletons(200, seed=7).astype(np.float64)
    theirs = np.stack([ours[..., 0], -ours[..., 2], ours[..., 1]], -1) * 3.0  # -Y up
    src, out, vis = tmp_path / 'theirs.npz', tmp_path / 'converted.npy', tmp_path / 'v.png'
    np.savez(src, joints=theirs)
    stdout = _main(capsys, '--from-file', str(src), '--up=-y', '--out', str(out), '--stats',
                   '--vis', str(vis), '--vis-num', '2')
    np.testing.assert_allclose(np.load(out), ours, atol=2e-6)
    np.testing.assert_array_equal(np.load(out), load_skeleton_file(str(src), '-y'))
    assert 'theirs.npz (up -y): 200 skeletons' in stdout
    assert all(v.endswith('PASS') for v in _stats_lines(stdout).values())
    assert vis.read_bytes().startswith(b'\x89PNG')
    # Read with the wrong up axis the trunk lies flat: the tilt row fails.
    lines = _stats_lines(_main(capsys, '--from-file', str(src), '--stats'))
    assert lines['trunk tilt from vertical, median'].endswith('FAIL')
    # A mirror image (x -> -x) is flagged.
    np.save(tmp_path / 'mirror.npy', (ours * [-1, 1, 1]).astype(np.float32))
    lines = _stats_lines(_main(capsys, '--from-file', str(tmp_path / 'mirror.npy'), '--stats'))
    assert lines['nose in front, left hip & shoulder on the left'].endswith('FAIL')
    # A bad file: a clear error naming it.
    (tmp_path / 'bad.npy').write_bytes(b'nope')
    with pytest.raises(SystemExit, match='bad.npy'):
        tool.main(['--from-file', str(tmp_path / 'bad.npy'), '--stats'])


def test_front_view_puts_the_subjects_left_on_the_viewers_right(tmp_path):
    # Any yaw: the plot turns each skeleton to face the camera of the front view first.
    skeletons = sample_skeletons(4, seed=11)
    fig = tool.plot_skeletons(skeletons, str(tmp_path / 'v.png'), num=4, return_fig=True)
    try:
        axes = np.array(fig.axes).reshape(4, len(tool.VIEWS))
        assert [ax.get_title() for ax in axes[0]] == ['front', 'right side', 'top']
        assert not axes[0, 0].xaxis_inverted()
        for row in range(4):
            front, side, top = axes[row]
            lines = front.get_lines()
            assert len(lines) == len(H36M_BONES)
            # Bones are drawn in H36M_BONES order with their colours; compare hips and
            # shoulders (always side by side, whatever the limbs do).
            xs = {H36M_JOINT_NAMES[c]: line.get_xdata()[1]
                  for (_, c), line in zip(H36M_BONES, lines)}
            colors = [line.get_color() for line in lines]
            assert colors == list(H36M_BONE_COLORS)
            assert xs['left_hip'] > 0 > xs['right_hip']
            assert xs['left_shoulder'] > xs['right_shoulder']
            # From the right side the face (nose-level joint) points right; from the top the
            # subject's right is on the right.
            side_x = {H36M_JOINT_NAMES[c]: line.get_xdata()[1]
                      for (_, c), line in zip(H36M_BONES, side.get_lines())}
            assert side_x['neck_base'] > 0
            top_x = {H36M_JOINT_NAMES[c]: line.get_xdata()[1]
                     for (_, c), line in zip(H36M_BONES, top.get_lines())}
            assert top_x['right_hip'] > 0 > top_x['left_hip']
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)


def test_projection_of_the_template_by_hand():
    from liftedcl_mm.skeleton import H36M_TEMPLATE_BONES
    skel = np.zeros((17, 3))
    for k, (parent, child) in enumerate(H36M_BONES):
        skel[child] = skel[parent] + H36M_TEMPLATE_BONES[k]
    front = tool.project(skel, tool.VIEWS[0])
    lh, rh = H36M_JOINT_NAMES.index('left_hip'), H36M_JOINT_NAMES.index('right_hip')
    # left hip at x = -132.95 mm in our frame -> +132.95 (viewer's right) from the front
    assert front[lh, 0] == pytest.approx(132.95) and front[rh, 0] == pytest.approx(-132.95)
    np.testing.assert_allclose(front[:, 1], skel[:, 2])
    np.testing.assert_allclose(tool.face_front(skel[None])[0], skel, atol=1e-4)
