"""Does pre-training learn? The controlled study of issue 14 on synthetic humans with 3D truth.

Example::

    python tools/analysis/learning_signal.py --out work_dirs/learning_signal
    python tools/analysis/learning_signal.py --out /tmp/ls --quick   # smoke run, ~2 min

Arms (``ARMS``), each an ordinary config under ``configs/study/`` sharing backbone, data and
budget: (a) random init (the backbone of (d), untrained), (b) invariant branch only and, beside
it, MMPretrain's own ``MoCo``, (c) invariant + equivariant, (d) full LiftedCL, (e) LiftedCL with
the alignment sampling true cell centres, (f) LiftedCL whose discriminator standardises its inputs
by the prior's statistics, (g) LiftedCL with the adversarial branch of the best variant of
``adversarial_balance.py`` (standardised discriminator, BN in the lifting head, its gradient
clipped; ``configs/study/liftedcl_r18_synth_stable-adv.py``). (f) and (g) are diagnostic arms,
not in the default ``--arms``: ask for them by name. Each arm is trained once per seed with
MMEngine's ``Runner`` (the configs' own code path), then

- health: invariant top-1 (%) against chance ``100 / (K + 1)``, the loss against ``ln(K + 1)``,
  discriminator accuracy, the share of lifted skeletons passing ``skeleton.stats.plausible``,
  PA-MPJPE of the lifting head against the truth next to the prior's mean pose. The lifting
  head is scored on the val crops resized to the config's training views (``view_scale``, 64x64:
  a full crop is one of the views RandomResizedCrop can draw), with BN as trained; at the
  probes' 128x96 its input maps are 4x3 instead of 2x2, a shift that moved plausibility by up to
  53 points either way (``plausible_share_probe_size`` keeps that number);
- probes on frozen features: the backbone's last map of every crop (128x96), average-pooled to a
  4x3 grid so that position survives, standardised, closed-form ridge for the 17 COCO keypoints
  in crop coordinates (PCK@0.1 of the crop height, labelled points only) and the root-relative
  3D joints (PA-MPJPE, mm), lambda by 5-fold CV on masked squared error and on PA-MPJPE; once
  with BN statistics as trained, once recalibrated on the probe crops (``recalibrate_bn``).

Writes ``<out>/results.json`` (every run, curves included), ``<out>/results.md`` (mean +- std
over seeds) and ``<out>/probes.png``, ``<out>/curves.png``, ``<out>/lifted_skeletons.png``. The
data come from ``tools/misc/make_synthetic_humans.py`` (generated into ``--data`` when missing),
by default with ``--palette shared``: with a colour per person the crops can be told apart by
colour alone, and the contrastive arms learnt little else (README, *Does it learn?*). Each init
is also fine-tuned in MMPose (``study_finetune.py``; ``--no-finetune`` skips it).
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import DictAction
from mmengine.hooks import Hook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # study_finetune.py beside this file

# name -> (config under configs/study/, whether it is trained)
ARMS = {
    'a_random_init': ('liftedcl_r18_synth.py', False),
    'b_inv': ('liftedcl_r18_synth_inv.py', True),
    'b_mocov2_mmpretrain': ('mocov2_mmpretrain_r18_synth.py', True),
    'c_inv_equiv': ('liftedcl_r18_synth_inv-equiv.py', True),
    'd_liftedcl': ('liftedcl_r18_synth_balanced-adv.py', True),
    'e_liftedcl_stride_centres': ('liftedcl_r18_synth_stride-centres.py', True),
    'd0_liftedcl_authors_adv': ('liftedcl_r18_synth.py', True),
    'f_liftedcl_std_disc': ('liftedcl_r18_synth_std-disc.py', True),
    'g_liftedcl_stable_adv': ('liftedcl_r18_synth_stable-adv.py', True),
}
# diagnostic arms of the adversarial branch (the steps from the authors' setting to (d)): run
# when named
DEFAULT_ARMS = [arm for arm in ARMS
                if arm not in ('d0_liftedcl_authors_adv', 'f_liftedcl_std_disc',
                               'g_liftedcl_stable_adv')]
PROBE_SIZE = (128, 96)  # crop (H, W) fed to the frozen backbone
PROBE_GRID = (4, 3)
BN_RECAL_CROPS = 1000  # a cumulative average: 1000 crops settle the statistics
LAMBDAS = tuple(10.0**e for e in np.arange(-3, 3.01, 0.5))  # 0.001 ... 1000


class _Recorder(Hook):
    """Collects every iteration's scalars (and MoCo's top-1, which MoCo does not log)."""

    priority = 'LOW'

    def __init__(self):
        self.rows, self.pending = [], {}

    def wrap_contrastive_head(self, head):
        loss = head.loss

        def loss_with_top1(pos, neg):
            # top-1 of the positive among queue negatives, in % as LiftedCL's acc_inv; also into
            # the message hub, so MMEngine's logs (and --reuse) carry it
            top1 = (pos[:, 0] > neg.max(dim=1).values).float().mean() * 100
            self.pending['acc_inv'] = float(top1)
            from mmengine.logging import MessageHub
            MessageHub.get_current_instance().update_scalar('train/acc_inv', float(top1))
            return loss(pos, neg)

        head.loss = loss_with_top1

    def after_train_iter(self, runner, batch_idx=0, data_batch=None, outputs=None):
        row = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
               for k, v in (outputs or {}).items()
               if torch.is_tensor(v) and v.numel() == 1 or isinstance(v, (int, float))}
        row.update(self.pending)
        row['iter'] = runner.iter + 1
        self.rows.append(row)
        self.pending = {}


def logged_curves(work_dir: str, max_iters: int) -> list:
    """Scalars MMEngine logged (every logger interval) in the newest run of ``work_dir`` that
    reached ``max_iters``: the curves of a run whose in-memory record was lost."""
    for stamp in sorted(os.listdir(work_dir), reverse=True):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            rows = [r for r in rows if 'loss' in r]
            if rows and rows[-1].get('iter') == max_iters:
                return rows
    return []


def ensure_data(data: str, quick: bool, palette: str = 'shared') -> None:
    if osp.isfile(osp.join(data, 'coco_human', 'annotations', 'val2017.json')):
        return
    sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
    from make_synthetic_humans import main as make_humans
    argv = ['--out', data, '--no-progress', '--palette', palette]
    if quick:
        argv += ['--num-train', '48', '--num-val', '16', '--workers', '0']
    if make_humans(argv):
        raise RuntimeError('make_synthetic_humans.py failed')


def load_split(data: str, split: str, limit: int = 0) -> dict:
    """Crops of a split with 2D keypoints in crop coordinates ``[0, 1]`` and 3D joints."""
    with open(osp.join(data, 'coco_human', 'annotations', f'{split}.json')) as f:
        records = json.load(f)['data_list']
    with open(osp.join(data, 'coco', 'annotations', f'person_keypoints_{split}.json')) as f:
        by_id = {a['id']: a for a in json.load(f)['annotations']}
    records = records[:limit] if limit else records
    images, kpts, vis, joints = [], [], [], []
    for rec in records:
        img = cv2.imread(osp.join(data, 'coco_human', 'crops', split, rec['img_path']))
        images.append(cv2.resize(img, PROBE_SIZE[::-1], interpolation=cv2.INTER_AREA))
        x1, y1, x2, y2 = rec['ext_bbox']
        k = np.array(by_id[rec['ann_id']]['keypoints'], np.float64).reshape(17, 3)
        kpts.append((k[:, :2] - [x1, y1]) / [x2 - x1, y2 - y1])
        vis.append(k[:, 2] > 0)
        joints.append(np.array(rec['keypoints_3d'], np.float64))
    return dict(images=np.stack(images), kpts=np.stack(kpts), vis=np.stack(vis),
                joints=np.stack(joints))


def _to_input(model, images: np.ndarray) -> torch.Tensor:
    """BGR uint8 crops ``(N, H, W, 3)`` -> normalised RGB ``(N, 3, H, W)`` on the model's device."""
    pre = model.data_preprocessor
    device = next(model.parameters()).device
    x = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).float().to(device)
    return (x - pre.mean.view(1, 3, 1, 1).to(device)) / pre.std.view(1, 3, 1, 1).to(device)


@torch.no_grad()
def encode(model, images: np.ndarray, batch: int = 64):
    """Frozen features: pooled grid ``(N, C * 12)`` and the lifting head's joints, if any."""
    model.eval()
    feats, lifted = [], []
    for i in range(0, len(images), batch):
        maps = model.backbone(_to_input(model, images[i:i + batch]))
        feats.append(F.adaptive_avg_pool2d(maps[-1], PROBE_GRID).flatten(1).cpu())
        if getattr(model, 'lifting_head', None) is not None:
            lifted.append(model.lifting_head(maps).cpu())
    return (torch.cat(feats).double().numpy(),
            torch.cat(lifted).double().numpy() if lifted else None)


def resize_views(images: np.ndarray, size: int) -> np.ndarray:
    """Crops ``(N, H, W, 3)`` resized to the square training views ``(N, size, size, 3)``."""
    return np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
                     for img in images])


@torch.no_grad()
def recalibrate_bn(backbone, model, images: np.ndarray, batch: int = 64) -> None:
    """Re-estimate every BN layer's running statistics on ``images``; weights are untouched.

    A randomly initialised ResNet keeps BN's initial statistics (mean 0, variance 1), a trained
    one the statistics of its augmented training views, so "as trained" probes compare the BN
    statistics as much as the weights. Recalibrating on the probe's own crops puts every arm
    under the same normalisation (the ``*_bn`` columns).
    """
    norms = [m for m in backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all the batches
    backbone.train()
    for i in range(0, len(images), batch):
        backbone(_to_input(model, images[i:i + batch]))
    backbone.eval()


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` ``(N, J, 3)`` moved by the similarity (rotation, scale, shift) best fitting ``gt``
    (``(N, J, 3)`` or one ``(J, 3)`` for all); a proper rotation, never a mirror."""
    gt = np.broadcast_to(gt, pred.shape)
    p, g = pred - pred.mean(1, keepdims=True), gt - gt.mean(1, keepdims=True)
    u, s, vt = np.linalg.svd(np.einsum('nji,njk->nik', p, g))
    d = np.sign(np.linalg.det(u @ vt))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    scale = s.sum(1) / (p**2).sum((1, 2)).clip(min=1e-12)
    return scale[:, None, None] * p @ (u @ vt) + gt.mean(1, keepdims=True)


def procrustes_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-sample MPJPE ``(N,)`` after the similarity (rotation, scale, shift) fitting best."""
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(1)


def procrustes_mean(joints: np.ndarray, iters: int = 10) -> np.ndarray:
    """Generalised Procrustes mean ``(J, 3)`` of skeletons ``(N, J, 3)``: the one constant pose
    that PA-MPJPE can compare with. The plain mean of people seen from every side is no pose
    (limbs average out): on the synthetic val set it scores 236 mm, this one 126 mm."""
    ref = joints[0] - joints[0].mean(0)
    for _ in range(iters):
        ref = procrustes_align(joints, ref).mean(0)
        ref = ref - ref.mean(0)
    return ref


def _ridge_path(z: np.ndarray, ys: list, lambdas) -> list:
    """Ridge weights ``[target][lambda] -> (D, T)`` from one SVD of the centred design ``z``.

    Solves ``min (1/n)|z w - (y - mean y)|^2 + lam |w|^2``, i.e.
    ``w = V diag(s / (s^2 + lam n)) U^T (y - mean y)``, valid whether n < D or not.
    """
    n, d = z.shape
    paths = []
    if n < d:
        # the same through the n x n Gram matrix z z^T = U S^2 U^T (z^T U = V S): several
        # times faster than the SVD when samples are fewer than dimensions
        s2, u = np.linalg.eigh(z @ z.T)
        s2 = s2.clip(min=0)
        for y in ys:
            uty = u.T @ (y - y.mean(0))
            paths.append([z.T @ (u @ (uty / (s2 + lam * n)[:, None])) for lam in lambdas])
        return paths
    u, sv, vt = np.linalg.svd(z, full_matrices=False)
    for y in ys:
        uty = u.T @ (y - y.mean(0))
        paths.append([vt.T @ ((sv / (sv**2 + lam * n))[:, None] * uty) for lam in lambdas])
    return paths


def ridge_fit(x: np.ndarray, ys: list, scorers: list = None, folds: int = 5) -> list:
    """Closed-form ridge on standardised features, one fit per target, each with its own lambda.

    Args:
        x: features ``(N, D)``.
        ys: targets, each ``(N, T)``.
        scorers: per target, ``None`` (squared error) or ``score(pred, target, rows) -> float``
            to minimise, where ``pred`` and ``target`` are ``(n, T)`` for the held-out ``rows``
            ``(n,)``. Lambda must be chosen by the metric that is reported: chosen by squared
            error on raw coordinates, the 3D probe fell into two bands (~221 mm when CV picked
            10, ~229 mm when it picked 31.6) whatever the arm, as PA-MPJPE forgives the global
            scale and rotation that squared error punishes.

    Returns:
        ``[(predict, lam)]`` per target. Lambda is picked by ``folds``-fold CV on a
        half-decade grid: with one held-out split and decades, the 3D probe of one arm jumped
        ~12 mm between seeds only because lambda flipped between 10 and 100.
    """
    scorers = [s or squared_error for s in (scorers or [None] * len(ys))]
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    errors = np.zeros((len(ys), len(LAMBDAS)))
    for k in range(folds):
        held = np.arange(len(z)) % folds == k
        rows = np.flatnonzero(held)
        z_mean = z[~held].mean(0)
        paths = _ridge_path(z[~held] - z_mean, [y[~held] for y in ys], LAMBDAS)
        for t, (y, score) in enumerate(zip(ys, scorers)):
            for i, w in enumerate(paths[t]):
                pred = (z[held] - z_mean) @ w + y[~held].mean(0)
                errors[t, i] += score(pred, y[held], rows) * len(rows)
    lams = [LAMBDAS[int(i)] for i in errors.argmin(1)]
    z_mean = z.mean(0)
    fits = []
    for y, lam in zip(ys, lams):
        w = _ridge_path(z - z_mean, [y], [lam])[0][0]
        fits.append((lambda xq, w=w, b=y.mean(0): ((xq - mu) / sd - z_mean) @ w + b, lam))
    return fits


def squared_error(pred: np.ndarray, target: np.ndarray, rows: np.ndarray) -> float:
    return float(((pred - target)**2).sum(1).mean())


def probe(train: dict, val: dict, f_train: np.ndarray, f_val: np.ndarray) -> dict:
    # Unlabelled 2D points get the mean of the labelled ones (they are not scored).
    mean_kpt = (train['kpts'] * train['vis'][..., None]).sum(0) / \
        train['vis'].sum(0).clip(min=1)[:, None]
    y2d = np.where(train['vis'][..., None], train['kpts'], mean_kpt).reshape(len(f_train), -1)
    # Targets in one body-aligned frame: PA-MPJPE ignores the global rotation, which a linear
    # map of features cannot tell apart anyway (camera-frame targets scored worse than one
    # constant pose).
    y3d = procrustes_align(train['joints'], procrustes_mean(train['joints'])).reshape(
        len(f_train), -1)
    vis2 = np.repeat(train['vis'], 2, axis=1)
    (pred2d, lam2d), (pred3d, lam3d) = ridge_fit(f_train, [y2d, y3d], [
        lambda p, y, rows: float((((p - y)**2) * vis2[rows]).sum(1).mean()),
        lambda p, y, rows: float(
            procrustes_mpjpe(p.reshape(-1, 17, 3), y.reshape(-1, 17, 3)).mean())])
    px = np.array([PROBE_SIZE[1], PROBE_SIZE[0]], np.float64)
    dist = np.linalg.norm((pred2d(f_val).reshape(-1, 17, 2) - val['kpts']) * px, axis=-1)
    thr = 0.1 * PROBE_SIZE[0]
    pa = procrustes_mpjpe(pred3d(f_val).reshape(-1, 17, 3), val['joints']) * 1000
    return dict(pck2d=float((dist[val['vis']] < thr).mean()), pa_mpjpe3d=float(pa.mean()),
                lambda2d=lam2d, lambda3d=lam3d)


def baselines(train: dict, val: dict) -> dict:
    """Mean-pose answers: what a probe learns from features carrying no information."""
    mean_kpt = (train['kpts'] * train['vis'][..., None]).sum(0) / \
        train['vis'].sum(0).clip(min=1)[:, None]
    dist = np.linalg.norm((mean_kpt - val['kpts']) * [PROBE_SIZE[1], PROBE_SIZE[0]], axis=-1)
    mean_pose = np.broadcast_to(procrustes_mean(train['joints']), val['joints'].shape)
    return dict(pck2d=float((dist[val['vis']] < 0.1 * PROBE_SIZE[0]).mean()),
                pa_mpjpe3d=float(procrustes_mpjpe(mean_pose, val['joints']).mean() * 1000))


def finetune_arm(checkpoint, work_dir: str, args, seed: int) -> dict:
    """The MMPose fine-tuning arm (``study_finetune.py``) from one init; None: random init."""
    from study_finetune import finetune
    options = None
    if args.quick:  # two iterations on the tiny data: the outputs' structure, not the numbers
        options = {'train_cfg.max_iters': 2, 'train_dataloader.batch_size': 4,
                   'test_dataloader.batch_size': 8}
    metrics = finetune(checkpoint, osp.join(work_dir, 'finetune'), args.data, seed, options)
    return {k: round(v, 5) for k, v in metrics.items()}


def run_arm(arm: str, seed: int, args, train: dict, val: dict) -> dict:
    from mmengine.config import Config
    from mmengine.runner import Runner
    from liftedcl_mm.skeleton.stats import plausibility_breakdown
    config, trained = ARMS[arm]
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'study', config))
    cfg.work_dir = osp.join(args.out, 'runs', f'{arm}_seed{seed}')
    cfg.experiment_name = f'{arm}_seed{seed}_{time.strftime("%H%M%S")}'
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.train_dataloader.dataset.data_root = osp.join(args.data, 'coco_human') + '/'
    if args.iters:
        cfg.train_cfg.max_iters = args.iters
        cfg.default_hooks.checkpoint.interval = args.iters
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.quick:
        cfg.model.queue_len = 64
        cfg.train_dataloader.update(batch_size=8, num_workers=0, persistent_workers=False)
        cfg.default_hooks.logger.interval = 1
    start = time.time()
    runner = Runner.from_cfg(cfg)
    model = runner.model
    recorder = _Recorder()
    checkpoint = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    previous = args.previous.get((arm, seed))
    curves = previous['curves'] if previous else logged_curves(cfg.work_dir,
                                                                cfg.train_cfg.max_iters)
    if trained and args.reuse and osp.isfile(checkpoint) and curves:
        # Probes only (e.g. after the probe changed): the trained weights and the curves
        # logged while they were trained (from results.json, else MMEngine's scalars.json).
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
        recorder.rows = curves
        start -= previous['train_s'] if previous else 0
    elif trained:
        runner.register_hook(recorder)
        if getattr(model, 'head', None) is not None:  # MMPretrain's MoCo
            recorder.wrap_contrastive_head(model.head)
        runner.train()
    else:
        model.init_weights()
    train_s = time.time() - start
    # inference only from here: every core (training kept one thread, see main)
    torch.set_num_threads(args.probe_threads)
    f_train, _ = encode(model, train['images'])
    f_val, lifted_probe_size = encode(model, val['images'])
    # the lifting head scored on inputs like its training views, BN as trained
    lifted = (None if lifted_probe_size is None else
              encode(model, resize_views(val['images'], int(cfg.view_scale)))[1])
    result = dict(arm=arm, seed=seed, config=config, iters=cfg.train_cfg.max_iters if trained
                  else 0, train_s=round(train_s, 1), curves=recorder.rows,
                  probe=probe(train, val, f_train, f_val))
    recalibrate_bn(model.backbone, model, train['images'][:BN_RECAL_CROPS])
    result['probe_bn'] = probe(train, val, encode(model, train['images'])[0],
                               encode(model, val['images'])[0])
    queue = cfg.model.queue_len
    health = dict(chance_top1=100.0 / (queue + 1), chance_loss=math.log(queue + 1))
    tail = recorder.rows[-max(1, len(recorder.rows) // 5):]
    for key in ('acc_inv', 'loss_inv', 'loss', 'd_acc'):
        values = [r[key] for r in tail if key in r]
        if values:
            health[f'{key}_last_fifth'] = float(np.mean(values))
    # The bar for "visibly learns": InfoNCE >= 10% below ln(K + 1), top-1 >= 10x chance.
    is_moco = cfg.model.type.endswith('MoCo')
    inv_key, weight = ('loss', 1.0) if is_moco else ('loss_inv', cfg.model.loss_inv.loss_weight)
    if f'{inv_key}_last_fifth' in health and 'acc_inv_last_fifth' in health:
        ratio = health[f'{inv_key}_last_fifth'] / weight / health['chance_loss']
        health['inv_loss_over_chance'] = ratio
        health['learns'] = bool(ratio <= 0.9 and
                                health['acc_inv_last_fifth'] >= 10 * health['chance_top1'])
    if lifted is not None and getattr(model, 'prior_skeletons', None) is not None:
        prior = model.prior_skeletons.double().cpu().numpy()
        parts = plausibility_breakdown(lifted, prior)
        health['plausible_share'] = parts.pop('plausible')
        health.update({f'lifted_{k}': v for k, v in parts.items()})
        health['plausible_share_probe_size'] = float(
            plausibility_breakdown(lifted_probe_size, prior)['plausible'])
        health['lifting_pa_mpjpe'] = float(procrustes_mpjpe(lifted, val['joints']).mean() * 1000)
        mean_prior = np.broadcast_to(procrustes_mean(prior), val['joints'].shape)
        health['mean_prior_pa_mpjpe'] = float(
            procrustes_mpjpe(mean_prior, val['joints']).mean() * 1000)
        result['lifted_examples'] = lifted[:6].tolist()
    torch.set_num_threads(args.threads)
    if args.finetune:
        previous_ft = previous.get('finetune') if previous and args.reuse else None
        result['finetune'] = previous_ft or finetune_arm(
            checkpoint if trained else None, cfg.work_dir, args, seed)
    result['health'] = health
    return result


def summarise(results: list, base: dict) -> dict:
    table = {}
    for arm in ARMS:
        runs = [r for r in results if r['arm'] == arm]
        if not runs:
            continue
        row = {}
        metrics = [(f'{k}{sfx}', lambda r, k=k, p=p: r[p][k])
                   for p, sfx in (('probe', ''), ('probe_bn', '_bn'))
                   for k in ('pck2d', 'pa_mpjpe3d')]
        metrics += [(f'ft_{k}', lambda r, k=k: r.get('finetune', {}).get(k))
                    for k in ('coco/AP', 'pck0.05/PCK', 'pck0.2/PCK')]
        metrics += [(k, lambda r, k=k: r['health'].get(k)) for k in (
            'acc_inv_last_fifth', 'chance_top1', 'd_acc_last_fifth', 'plausible_share',
            'lifted_plausible_up_to_mirror', 'lifted_spread', 'lifting_pa_mpjpe',
            'mean_prior_pa_mpjpe')]
        for name, get in metrics:
            values = [get(r) for r in runs if get(r) is not None]
            if values:
                row[name] = dict(mean=float(np.mean(values)), std=float(np.std(values)),
                                 n=len(values))
        table[arm] = row
    table['mean_pose_baseline'] = {k: dict(mean=v, std=0.0, n=1) for k, v in base.items()}
    return table


def write_markdown(table: dict, path: str) -> str:
    """The table as markdown, written to ``path``; returns the text."""
    cols = [('pck2d', '2D probe PCK@0.1'), ('pa_mpjpe3d', '3D probe PA-MPJPE (mm)'),
            ('pck2d_bn', '2D probe, BN recal.'), ('pa_mpjpe3d_bn', '3D probe, BN recal. (mm)'),
            ('ft_pck0.05/PCK', 'fine-tuned PCK@0.05'), ('ft_pck0.2/PCK', 'fine-tuned PCK@0.2'),
            ('ft_coco/AP', 'fine-tuned AP'),
            ('acc_inv_last_fifth', 'inv top-1 % (last 1/5)'), ('chance_top1', 'chance %'),
            ('d_acc_last_fifth', 'D acc'), ('plausible_share', 'plausible'),
            ('lifted_plausible_up_to_mirror', 'plausible up to mirror'),
            ('lifted_spread', 'lifted pose spread'), ('lifting_pa_mpjpe', 'lifting PA-MPJPE (mm)'),
            ('mean_prior_pa_mpjpe', 'mean prior PA-MPJPE (mm)')]
    lines = ['| arm | ' + ' | '.join(c[1] for c in cols) + ' |',
             '|---' * (len(cols) + 1) + '|']
    for arm, row in table.items():
        cells = [f"{row[k]['mean']:.3f} ± {row[k]['std']:.3f}" if k in row else '—'
                 for k, _ in cols]
        lines.append(f'| {arm} | ' + ' | '.join(cells) + ' |')
    text = '\n'.join(lines) + '\n'
    with open(path, 'w') as f:
        f.write(text)
    return text


def write_plots(results: list, table: dict, val: dict, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    arms = [a for a in table if a != 'mean_pose_baseline']
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, title in zip(axes, ('pck2d', 'pa_mpjpe3d'),
                              ('2D probe PCK@0.1 (higher is better)',
                               '3D probe PA-MPJPE mm (lower is better)')):
        for shift, sfx, label in ((-0.2, '', 'BN as trained'), (0.2, '_bn', 'BN recalibrated')):
            means = [table[a][key + sfx]['mean'] for a in arms]
            stds = [table[a][key + sfx]['std'] for a in arms]
            ax.bar(np.arange(len(arms)) + shift, means, 0.4, yerr=stds, capsize=3, label=label)
        ax.axhline(table['mean_pose_baseline'][key]['mean'], color='k', ls='--', label='mean pose')
        ax.set_xticks(range(len(arms)), arms, rotation=30, ha='right', fontsize=7)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(out, 'probes.png'), dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for r in results:
        for ax, key in zip(axes, ('loss', 'acc_inv', 'd_acc')):
            pts = [(row['iter'], row[key]) for row in r['curves'] if key in row]
            if pts:
                its, vals = (np.array(v) for v in zip(*pts))
                win = max(1, len(vals) // 40)  # a running mean: single batches are noisy
                vals = np.convolve(vals, np.ones(win) / win, mode='valid')
                ax.plot(its[win - 1:], vals, label=f"{r['arm']} s{r['seed']}", lw=0.8)
                ax.set_title(f'{key} (running mean of {win})')
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(osp.join(out, 'curves.png'), dpi=100)
    plt.close(fig)
    from liftedcl_mm.skeleton.h36m import H36M_BONES
    with_lifted = [r for r in results if 'lifted_examples' in r]
    lifted = next((r for r in with_lifted if r['arm'] == 'd_liftedcl'),
                  with_lifted[-1] if with_lifted else None)
    num = 0 if lifted is None else len(lifted['lifted_examples'])
    fig, axes = plt.subplots(2, max(num, 1), figsize=(2.5 * max(num, 1), 5), squeeze=False)
    for i in range(num):
        # Front views: the lifted body frame (x, z) beside the camera-frame truth (x, -y).
        skels = (np.array(lifted['lifted_examples'][i])[:, [0, 2]],
                 val['joints'][i][:, [0, 1]] * [1, -1])
        for row, skel in enumerate(skels):
            for a, b in H36M_BONES:
                axes[row, i].plot(*skel[[a, b]].T, 'r-' if row == 0 else 'b-')
            axes[row, i].set_aspect('equal')
            axes[row, i].axis('off')
    if lifted is not None:
        fig.suptitle(f"{lifted['arm']} seed {lifted['seed']}: lifted (red, front view of the body "
                     'frame) above the truth (blue, camera view)', fontsize=8)
    fig.savefig(osp.join(out, 'lifted_skeletons.png'), dpi=80)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Learning-signal study on synthetic humans.')
    parser.add_argument('--out', default='work_dirs/learning_signal')
    parser.add_argument('--data', default=None,
                        help='make_synthetic_humans.py output (default: '
                        'data/synthetic_humans_shared, or data/synthetic_humans with --palette '
                        'random, with --quick <out>/data); generated when missing')
    parser.add_argument('--palette', choices=('shared', 'random'), default='shared',
                        help='colours of the people when --data is generated (see '
                        'make_synthetic_humans.py --palette)')
    parser.add_argument('--arms', nargs='+', default=DEFAULT_ARMS, choices=list(ARMS))
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='default 0 1 (--quick: 0 1 as well, on tiny data)')
    parser.add_argument('--iters', type=int, default=0,
                        help='override the configs\' max_iters (--quick: 2)')
    parser.add_argument('--probe-train', type=int, default=2000,
                        help='train crops used to fit the probes (0: all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='overrides applied to every arm, e.g. model.queue_len=256')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (see main)')
    parser.add_argument('--probe-threads', type=int, default=os.cpu_count() or 1,
                        help='torch threads of the probes\' feature extraction (inference, '
                        'after each arm\'s training): default every core')
    parser.add_argument('--reuse', action='store_true',
                        help='skip training where <out>/runs/<arm>_seed<seed> holds the final '
                        'checkpoint and <out>/results.json its curves: recompute probes only')
    parser.add_argument('--no-finetune', dest='finetune', action='store_false',
                        help='skip the MMPose fine-tuning of each init (study_finetune.py, '
                        '~75 s per run on 2 cores)')
    parser.add_argument('--quick', action='store_true', help='smoke run: tiny data, 2 iters')
    parser.add_argument('--combine', nargs='+', default=None, metavar='DIR',
                        help='train nothing: write the table, results.json and plots of the '
                        'runs saved in these output folders (e.g. more seeds run apart) into '
                        '--out')
    args = parser.parse_args(argv)
    if args.data is None:
        args.data = (osp.join(args.out, 'data') if args.quick else
                     {'shared': 'data/synthetic_humans_shared',
                      'random': 'data/synthetic_humans'}[args.palette])
    if args.seeds is None:
        args.seeds = [0, 1]
    if args.quick and not args.iters:
        args.iters = 2
    return args


def combine(args) -> int:
    """``--combine``: one table over the runs saved in several output folders."""
    runs, base, seen = [], None, set()
    for folder in args.combine:
        path = osp.join(folder, 'results.json')
        if not osp.isfile(path):
            raise FileNotFoundError(f'--combine: no results.json in {folder}')
        with open(path) as f:
            saved = json.load(f)
        if base is not None and saved['baseline'] != base:
            raise ValueError(f'--combine: {folder} was probed on other data than '
                             f'{args.combine[0]} (its baselines differ)')
        base = saved['baseline']
        for run in saved['runs']:
            if (run['arm'], run['seed']) in seen:
                raise ValueError(f"--combine: {run['arm']} seed {run['seed']} is in more than "
                                 'one folder')
            seen.add((run['arm'], run['seed']))
            runs.append(run)
    os.makedirs(args.out, exist_ok=True)
    write_outputs(dict(combine=args.combine), base, runs, load_split(args.data, 'val2017'),
                  args.out)
    return 0


def write_outputs(saved_args: dict, base: dict, runs: list, val: dict, out: str) -> None:
    """The table of ``runs``: ``results.json`` (with the runs), ``results.md`` and the plots."""
    table = summarise(runs, base)
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump(dict(args=saved_args, baseline=base, table=table, runs=runs), f)
    markdown = write_markdown(table, osp.join(out, 'results.md'))
    write_plots(runs, table, val, out)
    print(markdown)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.combine:
        return combine(args)
    os.makedirs(args.out, exist_ok=True)
    # One thread by default: on a shared 2-core machine two OpenMP threads per process ran a
    # ResNet-18 step 17x slower than one (spin-waiting against the other process).
    torch.set_num_threads(args.threads)
    ensure_data(args.data, args.quick, args.palette)
    train = load_split(args.data, 'train2017', args.probe_train)
    val = load_split(args.data, 'val2017')
    base = baselines(train, val)
    args.previous = {}
    if args.reuse and osp.isfile(osp.join(args.out, 'results.json')):
        with open(osp.join(args.out, 'results.json')) as f:
            args.previous = {(r['arm'], r['seed']): r for r in json.load(f)['runs']}
    results = []
    saved_args = {k: v for k, v in vars(args).items() if k != 'previous'}
    for arm in args.arms:
        for seed in args.seeds:
            results.append(run_arm(arm, seed, args, train, val))
            r = results[-1]
            print(f"[learning_signal] {arm} seed {seed}: {r['train_s']} s, probe {r['probe']}, "
                  f"probe_bn {r['probe_bn']}, health {r['health']}", flush=True)
            # after every run, so that a failing arm loses nothing done before it
            with open(osp.join(args.out, 'results.json'), 'w') as f:
                json.dump(dict(args=saved_args, baseline=base, runs=results), f)
    write_outputs(saved_args, base, results, val, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
