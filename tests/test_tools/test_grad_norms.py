import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import grad_norms as tool  # noqa: E402

TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')


def _norms(tmp_path, name, *options):
    out = tmp_path / f'{name}.json'
    argv = [TINY, '--out', str(out)]
    if options:
        argv += ['--cfg-options', *options]
    assert tool.main(argv) == 0
    return json.loads(out.read_text())['terms']


def test_per_term_norms_follow_the_adversarial_gradient_factor(tmp_path):
    full = _norms(tmp_path, 'full')
    assert set(full) == {'loss_inv', 'loss_equiv', 'loss_adv_g'}
    assert all(row['backbone_grad_norm'] > 0 for row in full.values())
    assert full['loss_adv_g']['joints_grad_norm'] > 0
    quarter = _norms(tmp_path, 'quarter', 'model.adv_backbone_grad=0.25')
    # same seed, same batch and initialisation: only what reaches the backbone from the
    # adversarial term changes, by the factor
    for term in ('loss_inv', 'loss_equiv'):
        assert quarter[term] == full[term]
    assert quarter['loss_adv_g']['value'] == full['loss_adv_g']['value']
    assert quarter['loss_adv_g']['joints_grad_norm'] == full['loss_adv_g']['joints_grad_norm']
    assert quarter['loss_adv_g']['backbone_grad_norm'] == pytest.approx(
        0.25 * full['loss_adv_g']['backbone_grad_norm'], rel=1e-5)
    # a term switched off is not reported
    assert 'loss_adv_g' not in _norms(tmp_path, 'no_adv', 'model.loss_adv.loss_weight=0.0')


def test_refuses_a_model_that_is_not_liftedcl(tmp_path):
    with pytest.raises(ValueError, match='LiftedCL'):
        tool.main([osp.join(ROOT, 'configs', 'study', 'mocov2_mmpretrain_r18_synth.py')])
