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


def _tiny_state(seed=0):
    import liftedcl_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.utils import set_random_seed

    from liftedcl_mm.registry import MODELS
    set_random_seed(seed)  # as the tool does before building: the same initial weights
    init_default_scope('liftedcl_mm')
    return MODELS.build(Config.fromfile(TINY).model).state_dict()


def test_checkpoint_weights_are_the_ones_measured(tmp_path):
    import torch
    fresh = _norms(tmp_path, 'fresh')
    state = _tiny_state()
    # a DataParallel-style prefix is accepted (the loader strips 'module.')
    path = tmp_path / 'same.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in state.items()}}, path)
    assert tool.main([TINY, '--checkpoint', str(path), '--out', str(tmp_path / 'same.json')]) == 0
    assert json.loads((tmp_path / 'same.json').read_text())['terms'] == fresh
    # other weights give other norms: the checkpoint is really loaded
    state['backbone.conv1.weight'] = state['backbone.conv1.weight'] * 2
    torch.save({'state_dict': state}, tmp_path / 'other.pth')
    assert tool.main([TINY, '--checkpoint', str(tmp_path / 'other.pth'),
                      '--out', str(tmp_path / 'other.json')]) == 0
    other = json.loads((tmp_path / 'other.json').read_text())['terms']
    assert other['loss_inv']['backbone_grad_norm'] != fresh['loss_inv']['backbone_grad_norm']


def test_refuses_a_checkpoint_of_another_model(tmp_path):
    import torch
    from liftedcl_mm.utils.state_check import StateMismatch
    state = _tiny_state()
    state.pop('backbone.conv1.weight')
    state['neck.fc.weight'] = torch.zeros(3, 3)
    path = tmp_path / 'wrong.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(StateMismatch, match=r'does not fit.*missing from the checkpoint: '
                                            r'backbone\.conv1\.weight'):
        tool.main([TINY, '--checkpoint', str(path)])
