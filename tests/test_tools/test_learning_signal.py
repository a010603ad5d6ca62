import json
import os.path as osp
import sys
from unittest import mock

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import learning_signal as tool  # noqa: E402


def test_procrustes_removes_rotation_scale_and_shift_but_not_a_mirror():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 17, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    moved = 2.5 * gt @ rot.T + [1.0, -2.0, 3.0]
    np.testing.assert_allclose(tool.procrustes_mpjpe(moved, gt), 0, atol=1e-9)
    mirrored = gt * [-1, 1, 1]
    assert np.all(tool.procrustes_mpjpe(mirrored, gt) > 0.1)


def test_procrustes_mean_is_the_pose_behind_rotated_scaled_copies():
    rng = np.random.default_rng(4)
    pose = rng.normal(size=(17, 3))
    copies = []
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))  # a rotation
        copies.append(rng.uniform(0.5, 2.0) * pose @ q.T + rng.normal(size=3))
    copies = np.stack(copies)
    mean = tool.procrustes_mean(copies)
    np.testing.assert_allclose(tool.procrustes_mpjpe(mean[None], pose[None]), 0, atol=1e-8)
    # the plain mean of the rotated copies is no such pose
    assert tool.procrustes_mpjpe(copies.mean(0)[None], pose[None])[0] > 0.1
    # procrustes_align moves each copy onto the reference exactly, reference broadcast
    np.testing.assert_allclose(tool.procrustes_align(copies, pose), np.broadcast_to(
        pose, copies.shape), atol=1e-8)


def test_3d_probe_reads_pose_not_viewpoint():
    # Features that encode the articulation (a linear code of it) but not the yaw under which
    # each person is seen: the probe must fit near-perfectly and beat the constant pose.
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    rng = np.random.default_rng(5)
    poses = sample_skeletons(600, seed=1)
    poses = poses - poses[:, :1]
    yaw = rng.uniform(0, 2 * np.pi, len(poses))
    c, s_ = np.cos(yaw), np.sin(yaw)
    rot = np.stack([np.stack([c, -s_, 0 * c], -1), np.stack([s_, c, 0 * c], -1),
                    np.stack([0 * c, 0 * c, 1 + 0 * c], -1)], 1)
    seen = np.einsum('nij,nkj->nki', rot, poses)  # camera frame: every side of the body
    # the articulation in one body-aligned frame (the sampler's poses carry a random yaw too)
    body = tool.procrustes_align(seen, tool.procrustes_mean(seen))
    feats = body.reshape(len(poses), -1) @ rng.normal(size=(51, 80))
    data = [dict(joints=seen[i], kpts=rng.uniform(size=(len(i), 17, 2)),
                 vis=np.ones((len(i), 17), bool)) for i in (np.arange(500), np.arange(500, 600))]
    result = tool.probe(data[0], data[1], feats[:500], feats[500:])
    baseline = tool.baselines(data[0], data[1])['pa_mpjpe3d']
    assert result['pa_mpjpe3d'] < 0.05 * baseline


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20))
    w = rng.normal(size=(20, 3))
    noise = rng.normal(size=(400, 2))
    (predict, lam), (_, lam_noise) = tool.ridge_fit(x, [x @ w + 5.0, noise])
    xq = rng.normal(size=(50, 20))
    np.testing.assert_allclose(predict(xq), xq @ w + 5.0, atol=0.05)
    # cross-validation: the cleanly linear target gets the weakest penalty, pure noise the
    # strongest
    assert lam == min(tool.LAMBDAS) and lam_noise == max(tool.LAMBDAS)


def test_ridge_picks_lambda_by_the_given_scorer_on_held_out_rows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 8))
    y = x @ rng.normal(size=(8, 2))
    seen = []

    def worst_fit(pred, target, rows):
        # the scorer sees each held-out row once, with its own target
        seen.append(rows)
        np.testing.assert_array_equal(target, y[rows])
        return -float(((pred - target)**2).sum(1).mean())

    (_, lam), = tool.ridge_fit(x, [y], [worst_fit], folds=4)
    # minimising the negated error picks the strongest penalty for a clean linear map (the
    # default squared error picks the weakest, test above)
    assert lam == max(tool.LAMBDAS)
    # one call per fold and lambda; the folds' rows partition the samples
    assert len(seen) == 4 * len(tool.LAMBDAS)
    np.testing.assert_array_equal(
        np.sort(np.concatenate(seen[::len(tool.LAMBDAS)])), np.arange(100))


@pytest.mark.parametrize('n', [30, 300])  # fewer and more samples than dimensions
def test_ridge_path_matches_the_normal_equations(n):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(n, 60))
    z -= z.mean(0)
    y = rng.normal(size=(n, 3))
    for lam, w in zip((0.1, 10.0), tool._ridge_path(z, [y], (0.1, 10.0))[0]):
        direct = np.linalg.solve(z.T @ z + lam * n * np.eye(60), z.T @ (y - y.mean(0)))
        np.testing.assert_allclose(w, direct, atol=1e-10)


def test_resize_views_gives_square_training_views():
    images = np.random.default_rng(0).integers(0, 256, (3, 128, 96, 3), dtype=np.uint8)
    views = tool.resize_views(images, 64)
    assert views.shape == (3, 64, 64, 3) and views.dtype == np.uint8
    # a flat crop stays flat; area interpolation keeps the mean
    flat = np.full((1, 128, 96, 3), 77, np.uint8)
    assert (tool.resize_views(flat, 64) == 77).all()
    assert abs(float(views.mean()) - float(images.mean())) < 1.0


def test_bn_recalibration_estimates_the_probe_images_statistics():
    import torch
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, bias=False)
    backbone = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    model = torch.nn.Module()
    model.backbone = backbone
    model.data_preprocessor = torch.nn.Module()
    model.data_preprocessor.mean = torch.tensor([100.0, 110.0, 120.0])
    model.data_preprocessor.std = torch.tensor([50.0, 55.0, 60.0])
    images = np.random.default_rng(0).integers(0, 256, (48, 8, 6, 3), dtype=np.uint8)
    # three equal batches: their mean is the mean
    tool.recalibrate_bn(backbone, model, images, batch=16)
    # independently: BGR -> RGB, normalise, convolve everything at once
    x = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).float()
    x = (x - model.data_preprocessor.mean.view(1, 3, 1, 1)) / \
        model.data_preprocessor.std.view(1, 3, 1, 1)
    with torch.no_grad():
        y = conv(x)
    bn = backbone[1]
    torch.testing.assert_close(bn.running_mean, y.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert not backbone.training and bn.num_batches_tracked == 3
    # the conv weights are untouched
    assert conv.weight.grad is None


@pytest.mark.slow
def test_quick_run_writes_every_output(tmp_path):
    out = tmp_path / 'ls'
    with mock.patch.object(tool, 'encode', wraps=tool.encode) as encode:
        assert tool.main(['--out', str(out), '--quick']) == 0
    # the lifting head's health is scored on the training views' size (64x64), the probes on
    # the 128x96 crops
    sizes = {call.args[1].shape[1:3] for call in encode.call_args_list}
    assert sizes == {tool.PROBE_SIZE, (64, 64)}
    for name in ('results.json', 'results.md', 'probes.png', 'curves.png',
                 'lifted_skeletons.png'):
        assert osp.getsize(out / name) > 0
    with open(out / 'results.json') as f:
        res = json.load(f)
    runs = res['runs']
    # (f) and (g) are diagnostic arms, run only when named
    for arm in ('f_liftedcl_std_disc', 'g_liftedcl_stable_adv'):
        assert arm in tool.ARMS and arm not in tool.DEFAULT_ARMS
    assert {(r['arm'], r['seed']) for r in runs} == {(a, s) for a in tool.DEFAULT_ARMS
                                                     for s in (0, 1)}
    for r in runs:
        trained = tool.ARMS[r['arm']][1]
        for key in ('probe', 'probe_bn'):
            assert set(r[key]) >= {'pck2d', 'pa_mpjpe3d'}
        assert 0 <= r['probe']['pck2d'] <= 1 and r['probe']['pa_mpjpe3d'] > 0
        assert len(r['curves']) == (2 if trained else 0)
        if trained:
            # top-1 is logged by every contrastive arm, MMPretrain's MoCo included
            assert all('acc_inv' in row and 'loss' in row for row in r['curves'])
            assert r['health']['inv_loss_over_chance'] > 0
            assert isinstance(r['health']['learns'], bool)
        if r['arm'].startswith(('d_', 'e_', 'f_')):
            assert {'d_acc_last_fifth', 'plausible_share', 'lifting_pa_mpjpe',
                    'mean_prior_pa_mpjpe'} <= set(r['health'])
            assert 0 <= r['health']['plausible_share'] <= 1
            assert 0 <= r['health']['plausible_share_probe_size'] <= 1
            assert 0 <= r['health']['lifted_plausible_up_to_mirror'] <= 1
        # the MMPose fine-tuning arm ran from every init (random init included)
        assert {'coco/AP', 'pck0.05/PCK', 'pck0.2/PCK'} <= set(r['finetune'])
        assert 0 <= r['finetune']['pck0.2/PCK'] <= 1
    table = res['table']
    assert set(table) == set(tool.DEFAULT_ARMS) | {'mean_pose_baseline'}
    for arm in tool.DEFAULT_ARMS:
        assert table[arm]['pck2d']['n'] == 2 and table[arm]['pck2d']['std'] >= 0
        assert table[arm]['ft_pck0.2/PCK']['n'] == 2
    md = (out / 'results.md').read_text().splitlines()
    assert len(md) == 2 + len(table) and all('±' in line for line in md[2:])
    # --combine: seeds saved in two folders give the same table as one run of both
    for seed in (0, 1):
        (tmp_path / f'seed{seed}').mkdir()
        with open(tmp_path / f'seed{seed}' / 'results.json', 'w') as f:
            json.dump(dict(baseline=res['baseline'],
                           runs=[r for r in runs if r['seed'] == seed]), f)
    both = tmp_path / 'both'
    assert tool.main(['--combine', str(tmp_path / 'seed0'), str(tmp_path / 'seed1'),
                      '--out', str(both), '--data', str(out / 'data')]) == 0
    with open(both / 'results.json') as f:
        assert json.load(f)['table'] == table
    assert (both / 'results.md').read_text() == (out / 'results.md').read_text()
    with pytest.raises(ValueError, match='more than one folder'):
        tool.main(['--combine', str(tmp_path / 'seed0'), str(tmp_path / 'seed0'),
                   '--out', str(both), '--data', str(out / 'data')])
    # --reuse: probes again from the saved checkpoints, curves carried over, nothing retrained
    stamps = {p: p.stat().st_mtime_ns for p in (out / 'runs').rglob('iter_*.pth')}
    assert tool.main(['--out', str(out), '--quick', '--reuse', '--arms', 'd_liftedcl',
                      '--seeds', '0']) == 0
    with open(out / 'results.json') as f:
        again = json.load(f)['runs']
    old = next(r for r in runs if r['arm'] == 'd_liftedcl' and r['seed'] == 0)
    assert len(again) == 1 and again[0]['curves'] == old['curves']
    assert again[0]['train_s'] >= old['train_s']
    assert {p: p.stat().st_mtime_ns for p in (out / 'runs').rglob('iter_*.pth')} == stamps


def test_default_data_has_the_shared_palette(tmp_path, monkeypatch):
    assert tool.parse_args([]).data == 'data/synthetic_humans_shared'
    assert tool.parse_args(['--palette', 'random']).data == 'data/synthetic_humans'
    seen = []
    sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
    import make_synthetic_humans
    monkeypatch.setattr(make_synthetic_humans, 'main', lambda argv: seen.append(argv) or 0)
    tool.ensure_data(str(tmp_path / 'data'), quick=True)
    assert seen and seen[0][seen[0].index('--palette') + 1] == 'shared'
