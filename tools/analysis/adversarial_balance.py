"""Adversarial balance in isolation: LiftedCL's lifting head against its KCS discriminator.

The full model's adversarial branch failed its health bars in the learning study (issue 14:
discriminator accuracy ~0.999, no lifted skeleton plausible). This tool asks whether the GAN
itself can balance, without the contrastive branches and the backbone in the way: it builds
the config's ``lifting_head`` (the generator), ``discriminator``, ``prior``, ``loss_adv`` and
``loss_disc`` and trains them alternately exactly as ``LiftedCL.train_step`` does (encoder step
against the current D, then a D step on the detached lifted joints and a prior draw), on fixed
inputs:

- ``--inputs noise``: rectified Gaussian vectors with the backbone's channel count (a plain GAN,
  the generator free to map its inputs anywhere);
- ``--inputs <checkpoint>``: the frozen, globally pooled backbone features of the synthetic
  crops (``--data``) under a trained checkpoint of the same config; then the lifted joints are
  also scored against the 3D truth (PA-MPJPE).

Each variant changes one thing of the configured optimisation (``VARIANTS``); every run logs
the discriminator accuracy and reports it over the last fifth, the share of generated
skeletons passing ``skeleton.stats.plausible`` at the end (held-out inputs) with the part of the
test they fail (``plausibility_breakdown``: bone ratios, knees, mirror images, pose spread),
and the loss of each side. Results go to ``<out>/adversarial_balance.{json,md}``.

Example::

    python tools/analysis/adversarial_balance.py --out work_dirs/adversarial_balance
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time

import numpy as np
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import liftedcl_mm  # noqa: E402,F401  (registers the modules)
from liftedcl_mm.models.heads.lifting_head import normalize_skeletons  # noqa: E402
from liftedcl_mm.models.utils.prior_bank import PriorBank  # noqa: E402
from liftedcl_mm.registry import MODELS  # noqa: E402
from liftedcl_mm.skeleton import H36M_PARENTS  # noqa: E402
from liftedcl_mm.skeleton.stats import plausibility_breakdown  # noqa: E402


def _subtree_masks() -> torch.Tensor:
    # (J, J): row j marks joint j and every joint below it in the kinematic tree
    masks = torch.eye(len(H36M_PARENTS))
    for joint in range(len(H36M_PARENTS)):
        ancestor = H36M_PARENTS[joint]
        while ancestor >= 0:
            masks[ancestor, joint] = 1.0
            ancestor = H36M_PARENTS[ancestor]
    return masks


_SUBTREE = _subtree_masks()

# One change each to the configured optimisation. Keys: d_lr / g_lr (factors), g_cosine
# (the generator's cosine decay; the configs decay G and keep D constant), d_cosine (decay D's
# lr the same way), adv (factor of loss_adv's weight), d_every (a D step every n iterations),
# g_steps (generator steps per iteration on the same inputs, the extra ones after D's step, as
# LiftedCL(lifting_steps) does), adam (Adam for both sides with the given lr, betas (0.5,
# 0.999), the usual GAN choice), r1 (weight gamma of the R1 penalty gamma / 2 *
# |grad_x D(real)|^2 on the discriminator, Mescheder et al. 2018), discriminator (overrides of
# the discriminator's config), lifting_head (overrides of the generator's), g_clip (max norm of
# the generator's gradient), joint_clip (max norm of each lifted skeleton's gradient, before it
# enters the generator).
VARIANTS = {
    'as_configured': {},
    'd_lr_x0.1': dict(d_lr=0.1),
    'd_lr_x0.01': dict(d_lr=0.01),
    'g_lr_constant': dict(g_cosine=False),
    'adv_weight_x10': dict(adv=10.0),
    'd_every_4': dict(d_every=4),
    'adam_1e-4': dict(adam=1e-4),
    'r1_1': dict(r1=1.0),
    'r1_10': dict(r1=10.0),
    'kcs_scale_50': dict(discriminator=dict(kcs_scale=50.0)),
    'kcs_scale_50_r1_1': dict(discriminator=dict(kcs_scale=50.0), r1=1.0),
    'kcs_scale_50_adam_1e-4': dict(discriminator=dict(kcs_scale=50.0), adam=1e-4),
    'standardize': dict(discriminator=dict(standardize=True)),
    'standardize_r1_1': dict(discriminator=dict(standardize=True), r1=1.0),
    'standardize_d_lr_x0.1': dict(discriminator=dict(standardize=True), d_lr=0.1),
    'standardize_g_clip_0.1': dict(discriminator=dict(standardize=True), g_clip=0.1),
    'standardize_joint_clip_1': dict(discriminator=dict(standardize=True), joint_clip=1.0),
    'standardize_joint_clip_1_adam_1e-4': dict(discriminator=dict(standardize=True),
                                               joint_clip=1.0, adam=1e-4),
    'lifting_bn': dict(lifting_head=dict(norm_cfg=dict(type='BN1d'))),
    'lifting_bn_mbstd_4': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                               discriminator=dict(minibatch_std_group=4)),
    'lifting_bn_standardize_mbstd_4': dict(
        lifting_head=dict(norm_cfg=dict(type='BN1d')),
        discriminator=dict(standardize=True, minibatch_std_group=4)),
    'lifting_bn_r1_1': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')), r1=1.0),
    'lifting_bn_kcs_scale_50': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                                    discriminator=dict(kcs_scale=50.0)),
    'lifting_bn_standardize_g_clip_0.1': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                                              discriminator=dict(standardize=True), g_clip=0.1),
    'lifting_bn_standardize_r1_1': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                                        discriminator=dict(standardize=True), r1=1.0),
    'lifting_bn_standardize_d_lr_x0.1': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                                             discriminator=dict(standardize=True), d_lr=0.1),
    'lifting_bn_standardize_g_clip_0.1_r1_0.1': dict(
        lifting_head=dict(norm_cfg=dict(type='BN1d')), discriminator=dict(standardize=True),
        g_clip=0.1, r1=0.1),
    'lifting_bn_standardize_g_lr_x0.1': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                                             discriminator=dict(standardize=True), g_lr=0.1),
    'lifting_bn_standardize_g_lr_x0.03': dict(lifting_head=dict(norm_cfg=dict(type='BN1d')),
                                              discriminator=dict(standardize=True), g_lr=0.03),
    # The steps from arm (g)'s setting ("stable": BN in the lifting head, standardised D,
    # generator gradient clipped at 0.1) to arm (d)'s ("balanced_psi"), with the discriminator's
    # std_floor, input_noise (instance noise) and canonical_yaw, and d_cosine (D's lr decayed
    # like the generator's).
    'yaw': dict(discriminator=dict(canonical_yaw=True)),
    **{name: dict(lifting_head=dict(norm_cfg=dict(type='BN1d')), g_clip=0.1,
                  **extra.get('opt', {}),
                  discriminator=dict(standardize=True,
                                     **{k: v for k, v in extra.items() if k != 'opt'}))
       for name, extra in (
           ('stable_noise_0.3', dict(input_noise=0.3)),
           ('stable_noise_1.0', dict(input_noise=1.0)),
           ('stable_noise_1.0_d_cosine', dict(input_noise=1.0, opt=dict(d_cosine=True))),
           ('stable_floor_0.5', dict(std_floor=0.5)),
           ('stable_floor_0.5_noise_0.3', dict(std_floor=0.5, input_noise=0.3)),
           ('stable_yaw', dict(canonical_yaw=True)),
           ('stable_yaw_noise_0.3', dict(canonical_yaw=True, input_noise=0.3)),
           ('stable_yaw_floor_0.5', dict(canonical_yaw=True, std_floor=0.5)),
           ('stable_yaw_floor_0.5_noise_0.5_d_cosine', dict(
               canonical_yaw=True, std_floor=0.5, input_noise=0.5, opt=dict(d_cosine=True))),
           ('stable_yaw_floor_0.5_noise_1.0_d_cosine', dict(
               canonical_yaw=True, std_floor=0.5, input_noise=1.0, opt=dict(d_cosine=True))),
       )},
    # arm (d)'s adversary (configs/study/liftedcl_r18_synth_balanced-adv.py; D also sees the
    # log bone proportions and the signed bends), and before those two inputs ("balanced_psi":
    # joints and Psi only), that with three generator steps per iteration, and with the
    # generator's clip at 1.0 instead of 0.3
    **{name: dict(lifting_head=dict(norm_cfg=dict(type='BN1d')), g_clip=clip, d_cosine=True,
                  g_steps=g_steps, discriminator=dict(standardize=True, std_floor=0.5,
                                                      input_noise=0.5, canonical_yaw=True,
                                                      **extra))
       for name, clip, g_steps, extra in (
           ('balanced', 0.3, 1, dict(bone_proportions=True, signed_bends=True)),
           ('balanced_psi', 0.3, 1, {}), ('balanced_psi_g_steps_3', 0.3, 3, {}),
           ('balanced_psi_g_clip_1.0', 1.0, 1, {}))},
    'mbstd_4': dict(discriminator=dict(minibatch_std_group=4)),
    'mbstd_4_r1_1': dict(discriminator=dict(minibatch_std_group=4), r1=1.0),
    'standardize_mbstd_4': dict(discriminator=dict(standardize=True, minibatch_std_group=4)),
    'standardize_mbstd_4_g_clip_0.1': dict(
        discriminator=dict(standardize=True, minibatch_std_group=4), g_clip=0.1),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=osp.join(ROOT, 'configs', 'study',
                                                     'liftedcl_r18_synth.py'))
    parser.add_argument('--inputs', default='noise',
                        help='"noise" or a checkpoint of --config whose backbone features '
                        'of the --data crops are the inputs')
    parser.add_argument('--data', default='data/synthetic_humans',
                        help='make_synthetic_humans.py output (with a checkpoint)')
    parser.add_argument('--mode', choices=('gan', 'sensitivity'), default='gan',
                        help='gan: generator against discriminator; sensitivity: the '
                        'discriminator alone, prior skeletons against ones with a bone '
                        'stretched or shrunk (can it see bone proportions?)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--iters', type=int, default=0, help='default: the config\'s max_iters')
    parser.add_argument('--num-inputs', type=int, default=3000,
                        help='training inputs (noise vectors or crops)')
    parser.add_argument('--out', default='work_dirs/adversarial_balance')
    return parser.parse_args(argv)


def load_inputs(args, cfg) -> dict:
    """``train``/``val`` inputs ``(N, C)`` and, for crops, their 3D truth ``(N, 17, 3)``."""
    channels = cfg.model.lifting_head.in_channels
    if args.inputs == 'noise':
        gen = torch.Generator().manual_seed(12345)
        x = torch.randn(args.num_inputs + 512, channels, generator=gen).clamp(min=0)
        return dict(train=x[:args.num_inputs], val=x[args.num_inputs:], truth=None)
    if not osp.isfile(args.inputs):
        raise FileNotFoundError(f'--inputs: no such checkpoint: {args.inputs}')
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    from learning_signal import _to_input, load_split
    from liftedcl_mm.utils.checkpoint import load_checkpoint_safely
    model = MODELS.build(copy.deepcopy(cfg.model))
    # the backbone only (arms without the adversary have no lifting head), and all of it
    state = load_checkpoint_safely(args.inputs).get('state_dict', {})
    model.backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')})
    model.eval()

    @torch.no_grad()
    def pooled(images):
        return torch.cat([model.backbone(_to_input(model, images[i:i + 64]))[-1].mean((2, 3))
                          for i in range(0, len(images), 64)])

    train = load_split(args.data, 'train2017', args.num_inputs)
    val = load_split(args.data, 'val2017')
    return dict(train=pooled(train['images']), val=pooled(val['images']), truth=val['joints'])


def _optimizer(params, opt_cfg: dict, lr_factor: float, adam: float):
    if adam:
        return torch.optim.Adam(params, lr=adam, betas=(0.5, 0.999))
    opt_cfg = dict(opt_cfg)
    if opt_cfg.pop('type') != 'SGD':
        raise ValueError('adversarial_balance reproduces SGD optimisers only')
    opt_cfg['lr'] *= lr_factor
    return torch.optim.SGD(params, **opt_cfg)


def _step(optimizer, loss: torch.Tensor, params, clip=None) -> None:
    """zero_grad, backward, optional gradient-norm clip, step."""
    optimizer.zero_grad()
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def _discriminator(cfg, variant: dict, prior: torch.Tensor):
    """The config's discriminator (with the variant's overrides), its optimiser and clip norm."""
    disc = MODELS.build(dict(copy.deepcopy(cfg.model.discriminator),
                             **variant.get('discriminator', {})))
    if getattr(disc, 'standardize', False):
        disc.set_input_statistics(prior)  # as LiftedCL does
    opt_d = _optimizer(disc.parameters(), cfg.optim_wrapper.discriminator.optimizer,
                       variant.get('d_lr', 1.0), variant.get('adam', 0))
    return disc, opt_d, (cfg.optim_wrapper.discriminator.get('clip_grad') or {}).get('max_norm')


def stretch_one_bone(joints: torch.Tensor, gen: torch.Generator,
                     factors=(0.6, 1.4)) -> torch.Tensor:
    """Scale one random bone of each skeleton (its child's subtree moves along), renormalise.

    Args:
        joints (torch.Tensor): ``(N, 17, 3)`` H36M skeletons.
        gen (torch.Generator): Source of the bone and factor choices.
        factors (tuple): Scale factors, one drawn per skeleton.

    Returns:
        torch.Tensor: ``(N, 17, 3)``, root at the origin and unit Frobenius norm (the prior's
        normalisation). The chosen bone's length ratio mostly leaves the band that
        ``plausible`` allows (~1.6x wide per bone), unless it sat near one end of it.
    """
    num = len(joints)
    child = torch.randint(1, len(H36M_PARENTS), (num, ), generator=gen)
    factor = torch.tensor(factors)[torch.randint(len(factors), (num, ), generator=gen)]
    parent = torch.tensor(H36M_PARENTS)[child]
    rows = torch.arange(num)
    shift = (joints[rows, child] - joints[rows, parent]) * (factor - 1)[:, None]
    return normalize_skeletons(joints + _SUBTREE[child][:, :, None] * shift[:, None])


def sensitivity(cfg, variant: dict, seed: int, iters: int, batch: int) -> dict:
    """Can the discriminator see bone proportions? Held-out accuracy of D trained (supervised,
    LSGAN targets) on prior skeletons against the same skeletons with one bone x0.6 or x1.4."""
    torch.manual_seed(seed)
    skeletons = PriorBank.build(copy.deepcopy(cfg.model.prior)).skeletons
    disc, opt_d, clip = _discriminator(cfg, variant, skeletons)
    loss_disc = MODELS.build(copy.deepcopy(cfg.model.loss_disc))
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(skeletons), generator=gen)
    held = max(1, len(skeletons) // 5)
    train, test = skeletons[order[held:]], skeletons[order[:held]]
    test_fake = stretch_one_bone(test, gen)
    checks = []
    for step in range(iters):
        real = train[torch.randint(len(train), (batch, ), generator=gen)]
        fake = stretch_one_bone(train[torch.randint(len(train), (batch, ), generator=gen)], gen)
        scores = disc(torch.cat([real, fake]))
        loss = loss_disc(scores[:batch], True) + loss_disc(scores[batch:], False)
        _step(opt_d, loss, disc.parameters(), clip)
        if (step + 1) % max(1, iters // 10) == 0:
            with torch.no_grad():
                acc = torch.cat([disc(test) > 0.5, disc(test_fake) < 0.5]).float().mean()
            checks.append(dict(iter=step + 1, held_out_acc=float(acc)))
    return dict(iters=iters, held_out_acc=checks[-1]['held_out_acc'] if checks else float('nan'),
                checks=checks)


def _clip_rows(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Each sample's gradient ``(N, ...)`` scaled down to norm ``max_norm`` at most."""
    norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)
    return grad * (max_norm / norm).clamp(max=1.0).view(-1, *[1] * (grad.dim() - 1))


def run(cfg, inputs: dict, variant: dict, seed: int, iters: int, batch: int) -> dict:
    """Train generator and discriminator alternately; return the health measures."""
    torch.manual_seed(seed)
    m = cfg.model
    gen = MODELS.build(dict(copy.deepcopy(m.lifting_head), **variant.get('lifting_head', {})))
    bank = PriorBank.build(copy.deepcopy(m.prior), gen.num_joints)
    disc, opt_d, clip = _discriminator(cfg, variant, bank.skeletons)
    adv_cfg = dict(m.loss_adv, loss_weight=m.loss_adv.loss_weight * variant.get('adv', 1.0))
    loss_adv, loss_disc = MODELS.build(adv_cfg), MODELS.build(copy.deepcopy(m.loss_disc))
    opt_g = _optimizer(gen.parameters(), cfg.optim_wrapper.generator.optimizer,
                       variant.get('g_lr', 1.0), variant.get('adam', 0))
    sched_g = (torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, iters)
               if variant.get('g_cosine', True) and not variant.get('adam') else None)
    sched_d = (torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, iters)
               if variant.get('d_cosine') and not variant.get('adam') else None)
    d_every = variant.get('d_every', 1)
    order = torch.Generator().manual_seed(seed)
    prior = bank.skeletons.double().numpy()
    rows, checks = [], []
    for step in range(iters):
        x = inputs['train'][torch.randint(len(inputs['train']), (batch, ), generator=order)]
        joints = gen(x)
        if variant.get('joint_clip'):
            joints.register_hook(lambda g: _clip_rows(g, variant['joint_clip']))
        loss_g = loss_adv(disc(joints), True)
        _step(opt_g, loss_g, gen.parameters(), variant.get('g_clip'))
        if sched_g is not None:
            sched_g.step()
        real = bank.draw(batch, step).requires_grad_(bool(variant.get('r1')))
        scores = disc(torch.cat([real, joints.detach()]))
        d_acc = torch.cat([scores[:batch] > 0.5, scores[batch:] < 0.5]).float().mean()
        loss_d = loss_disc(scores[:batch], True) + loss_disc(scores[batch:], False)
        if variant.get('r1'):
            grad, = torch.autograd.grad(scores[:batch].sum(), real, create_graph=True)
            loss_d = loss_d + variant['r1'] / 2 * grad.pow(2).flatten(1).sum(1).mean()
        if step % d_every == 0:
            _step(opt_d, loss_d, disc.parameters(), clip)
        for _ in range(variant.get('g_steps', 1) - 1):
            _step(opt_g, loss_adv(disc(gen(x)), True), gen.parameters(), variant.get('g_clip'))
        if sched_d is not None:
            sched_d.step()
        rows.append(dict(loss_g=loss_g.item(), loss_d=loss_d.item(), d_acc=d_acc.item()))
        if (step + 1) % max(1, iters // 10) == 0:
            with torch.no_grad():
                parts = plausibility_breakdown(gen(inputs['val']).double().numpy(), prior)
            checks.append(dict(iter=step + 1, plausible=parts['plausible'],
                               bones_in_band=parts['bones_in_band'], spread=parts['spread']))
        if not (np.isfinite(rows[-1]['loss_g']) and np.isfinite(rows[-1]['loss_d'])):
            break
    with torch.no_grad():
        lifted = gen(inputs['val']).double().numpy()
    tail = rows[-max(1, len(rows) // 5):]
    out = dict(iters=len(rows), d_acc_last_fifth=float(np.mean([r['d_acc'] for r in tail])),
               loss_g_last_fifth=float(np.mean([r['loss_g'] for r in tail])),
               loss_d_last_fifth=float(np.mean([r['loss_d'] for r in tail])),
               d_acc_curve=[r['d_acc'] for r in rows[::max(1, len(rows) // 50)]],
               checks=checks)
    out.update(plausibility_breakdown(lifted, prior))
    out['plausible_share'] = out.pop('plausible')
    if inputs['truth'] is not None:
        from learning_signal import procrustes_mean, procrustes_mpjpe
        out['lifting_pa_mpjpe'] = float(procrustes_mpjpe(lifted, inputs['truth']).mean() * 1000)
        # one constant pose, the prior's Procrustes mean: what lifting must beat
        out['prior_mean_pa_mpjpe'] = float(procrustes_mpjpe(
            np.broadcast_to(procrustes_mean(prior), lifted.shape), inputs['truth']).mean() * 1000)
    return out


def _describe(mode: str, r: dict) -> str:
    if mode == 'sensitivity':
        return ("held-out accuracy " + ', '.join(f"{c['held_out_acc']:.3f}@{c['iter']}"
                                                  for c in r['checks']))
    return (f"D acc (last 1/5) {r['d_acc_last_fifth']:.3f}, plausible "
            f"{r['plausible_share']:.3f} (up to mirror {r['plausible_up_to_mirror']:.3f}, bones "
            f"{r['bones_in_band']:.3f}, knees {r['knees_ok']:.3f}, spread {r['spread']:.3f})"
            + (f", lifting PA-MPJPE {r['lifting_pa_mpjpe']:.1f} mm"
               if 'lifting_pa_mpjpe' in r else ''))


# (result key, column) of the markdown table per mode
COLUMNS = dict(
    gan=[('d_acc_last_fifth', 'D acc (last 1/5)'), ('plausible_share', 'plausible'),
         ('plausible_up_to_mirror', 'up to mirror'), ('bones_in_band', 'bones in band'),
         ('knees_ok', 'knees ok'), ('spread', 'spread'), ('loss_g_last_fifth', 'loss_g'),
         ('loss_d_last_fifth', 'loss_d'), ('lifting_pa_mpjpe', 'lifting PA-MPJPE (mm)'),
         ('prior_mean_pa_mpjpe', "prior's Procrustes mean PA-MPJPE (mm)")],
    sensitivity=[('held_out_acc', 'held-out accuracy, prior vs one bone x0.6/x1.4')])


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    for key in ('lifting_head', 'discriminator', 'prior', 'loss_adv'):
        if not cfg.model.get(key):
            raise KeyError(f'{args.config}: model.{key} is needed (a full LiftedCL config)')
    iters = args.iters or cfg.get('max_iters') or cfg.train_cfg.get('max_iters')
    if not iters:
        raise ValueError('--iters is needed: the config has no max_iters')
    batch = cfg.train_dataloader.batch_size
    inputs = load_inputs(args, cfg) if args.mode == 'gan' else None
    os.makedirs(args.out, exist_ok=True)
    results = []
    for name in args.variants:
        for seed in args.seeds:
            start = time.time()
            if args.mode == 'gan':
                r = run(cfg, inputs, VARIANTS[name], seed, iters, batch)
            else:
                r = sensitivity(cfg, VARIANTS[name], seed, iters, batch)
            r = dict(variant=name, seed=seed, **r, seconds=round(time.time() - start, 1))
            results.append(r)
            print(f"[adversarial_balance] {name} seed {seed}: {_describe(args.mode, r)} "
                  f"({r['seconds']} s)", flush=True)
    cols = [c for c in COLUMNS[args.mode] if all(c[0] in r for r in results)]
    lines = [f'{args.mode}: inputs {args.inputs if inputs else "prior skeletons"}; config '
             f'{osp.relpath(args.config, ROOT)}; {iters} iterations, batch {batch}; mean +- std '
             f'over seeds {args.seeds}.', '',
             '| variant | ' + ' | '.join(c[1] for c in cols) + ' |',
             '|---' * (len(cols) + 1) + '|']
    for name in args.variants:
        runs = [r for r in results if r['variant'] == name]
        lines.append(f'| {name} | ' + ' | '.join(
            f"{np.mean([r[k] for r in runs]):.3f} ± {np.std([r[k] for r in runs]):.3f}"
            for k, _ in cols) + ' |')
    stem = 'adversarial_balance' if args.mode == 'gan' else 'discriminator_sensitivity'
    with open(osp.join(args.out, f'{stem}.json'), 'w') as f:
        json.dump(dict(args=vars(args), iters=iters, batch=batch, runs=results), f)
    with open(osp.join(args.out, f'{stem}.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
