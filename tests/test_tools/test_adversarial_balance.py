import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import adversarial_balance as tool  # noqa: E402


def test_variants_change_the_optimisers_as_named():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)
    opt = tool._optimizer(params, sgd, 0.1, 0)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.003)
    assert opt.param_groups[0]['momentum'] == 0.9 and sgd['lr'] == 0.03  # config untouched
    adam = tool._optimizer(params, sgd, 1.0, 1e-4)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]['betas'] == (0.5, 0.999)
    with pytest.raises(ValueError, match='SGD'):
        tool._optimizer(params, dict(type='AdamW', lr=1e-3), 1.0, 0)


def test_quick_run_writes_per_variant_results(tmp_path):
    out = tmp_path / 'ab'
    assert tool.main(['--out', str(out), '--iters', '10', '--seeds', '0', '1', '--num-inputs',
                      '64', '--variants', 'as_configured', 'd_every_4',
                      'balanced_psi_g_steps_3']) == 0
    with open(out / 'adversarial_balance.json') as f:
        runs = json.load(f)['runs']
    assert [(r['variant'], r['seed']) for r in runs] == [
        ('as_configured', 0), ('as_configured', 1), ('d_every_4', 0), ('d_every_4', 1),
        ('balanced_psi_g_steps_3', 0), ('balanced_psi_g_steps_3', 1)]
    for r in runs:
        assert r['iters'] == 10 and 0.0 <= r['d_acc_last_fifth'] <= 1.0
        assert 0.0 <= r['plausible_share'] <= 1.0 and len(r['d_acc_curve']) == 10
    # seeds differ in initialisation and batches
    assert runs[0]['loss_g_last_fifth'] != runs[1]['loss_g_last_fifth']
    table = (out / 'adversarial_balance.md').read_text()
    for variant in ('as_configured', 'd_every_4', 'balanced_psi_g_steps_3'):
        assert f'| {variant} |' in table


def test_balanced_variant_is_arm_d_adversary():
    # the tool's 'balanced' variant must stay what the study's arm (d) config sets
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'study', 'liftedcl_r18_synth_balanced-adv.py'))
    variant = tool.VARIANTS['balanced']
    assert cfg.model.get('lifting_steps', 1) == variant['g_steps'] == 1
    assert cfg.model.get('disc_steps', 1) == 1 and 'd_every' not in variant
    # the previous (d) adversary differs from it in D's two extra inputs only, and its g_steps
    # variant from that in g_steps only
    psi = tool.VARIANTS['balanced_psi']
    assert {k: v for k, v in variant.items() if k != 'discriminator'} == \
        {k: v for k, v in psi.items() if k != 'discriminator'}
    assert dict(psi['discriminator'], bone_proportions=True, signed_bends=True) == \
        variant['discriminator']
    assert {k: v for k, v in tool.VARIANTS['balanced_psi_g_steps_3'].items() if k != 'g_steps'} == \
        {k: v for k, v in psi.items() if k != 'g_steps'}
    for key, value in variant['discriminator'].items():
        assert cfg.model.discriminator[key] == value, key
    assert cfg.model.lifting_head.norm_cfg == variant['lifting_head']['norm_cfg']
    assert cfg.model.lifting_grad_clip == variant['g_clip']
    assert variant['d_cosine'] and \
        cfg.param_scheduler.discriminator[0]['type'] == 'CosineAnnealingLR'


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no-such.pth'):
        tool.main(['--out', str(tmp_path), '--inputs', str(tmp_path / 'no-such.pth'),
                   '--iters', '2'])


def test_stretch_one_bone_changes_exactly_one_bone_out_of_the_band():
    from liftedcl_mm.datasets.skeleton_prior import sample_skeletons
    from liftedcl_mm.skeleton.stats import bone_length_ratios, bone_ratio_band
    prior = sample_skeletons(200, seed=0)
    skeletons = torch.as_tensor(prior[:50], dtype=torch.float32)
    stretched = tool.stretch_one_bone(skeletons, torch.Generator().manual_seed(0)).double()
    before = bone_length_ratios(skeletons.double().numpy())
    after = bone_length_ratios(stretched.numpy())
    # bones' lengths relative to each other: all equal but one, which moved by 0.6 or 1.4
    rel = after / before
    for row in rel:
        changed = np.abs(row / np.median(row) - 1) > 1e-4
        assert changed.sum() == 1
        assert row[changed][0] / np.median(row) == pytest.approx(0.6, abs=1e-4) or \
            row[changed][0] / np.median(row) == pytest.approx(1.4, abs=1e-4)
    np.testing.assert_allclose(stretched[:, 0], 0, atol=1e-6)  # the prior's normalisation
    np.testing.assert_allclose(stretched.flatten(1).norm(dim=1), 1, atol=1e-5)
    band = bone_ratio_band(prior)
    # the band spans ~1.6x per bone, so a bone near an end of its range may stay inside
    assert ((after >= band[0]) & (after <= band[1])).all(1).mean() < 0.1


def test_sensitivity_mode_reports_held_out_accuracy(tmp_path):
    assert tool.main(['--mode', 'sensitivity', '--out', str(tmp_path), '--iters', '20',
                      '--seeds', '0', '--variants', 'as_configured', 'kcs_scale_50']) == 0
    with open(tmp_path / 'discriminator_sensitivity.json') as f:
        runs = json.load(f)['runs']
    assert [r['variant'] for r in runs] == ['as_configured', 'kcs_scale_50']
    assert all(0 <= r['held_out_acc'] <= 1 and len(r['checks']) == 10 for r in runs)


def test_features_of_a_checkpoint_without_lifting_head(tmp_path):
    # inputs from the backbone of an arm without the adversary (no lifting head in the file)
    from mmengine.config import Config

    from liftedcl_mm.registry import MODELS
    sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
    from make_synthetic_humans import main as make_humans
    data = tmp_path / 'data'
    assert make_humans(['--out', str(data), '--num-train', '3', '--num-val', '2', '--workers',
                        '0', '--no-progress']) == 0
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'study', 'liftedcl_r18_synth_inv-equiv.py'))
    model = MODELS.build(cfg.model)
    assert model.lifting_head is None
    torch.save(dict(state_dict=model.state_dict(), meta={}), tmp_path / 'c.pth')
    out = tmp_path / 'out'
    assert tool.main(['--inputs', str(tmp_path / 'c.pth'), '--data', str(data), '--out',
                      str(out), '--iters', '4', '--seeds', '0', '--num-inputs', '6',
                      '--variants', 'as_configured']) == 0
    with open(out / 'adversarial_balance.json') as f:
        run, = json.load(f)['runs']
    assert run['lifting_pa_mpjpe'] > 0  # scored against the crops' 3D truth
    assert '| lifting PA-MPJPE (mm) |' in (out / 'adversarial_balance.md').read_text()


def test_clip_rows_bounds_each_sample_and_keeps_small_ones():
    grad = torch.tensor([[3.0, 4.0], [0.3, 0.4]]).view(2, 1, 2)  # norms 5 and 0.5
    out = tool._clip_rows(grad, 1.0)
    torch.testing.assert_close(out[0].flatten(), torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(out[1], grad[1])
