import json
import os.path as osp
import sys

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
                      '64', '--variants', 'as_configured', 'd_every_4']) == 0
    with open(out / 'adversarial_balance.json') as f:
        runs = json.load(f)['runs']
    assert [(r['variant'], r['seed']) for r in runs] == [
        ('as_configured', 0), ('as_configured', 1), ('d_every_4', 0), ('d_every_4', 1)]
    for r in runs:
        assert r['iters'] == 10 and 0.0 <= r['d_acc_last_fifth'] <= 1.0
        assert 0.0 <= r['plausible_share'] <= 1.0 and len(r['d_acc_curve']) == 10
    # seeds differ in initialisation and batches
    assert runs[0]['loss_g_last_fifth'] != runs[1]['loss_g_last_fifth']
    table = (out / 'adversarial_balance.md').read_text()
    assert '| as_configured |' in table and '| d_every_4 |' in table


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no-such.pth'):
        tool.main(['--out', str(tmp_path), '--inputs', str(tmp_path / 'no-such.pth'),
                   '--iters', '2'])
