"""Benchmark scripts: helpers, and a --quick end-to-end run of run_all.py.

No timing is asserted here (the numbers depend on the machine); the end-to-end test checks that
every figure is produced with a numeric value and target.
"""
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / 'tools' / 'benchmarks'
sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402

# Figures every full or quick CPU run must produce, by benchmark (substring of the name).
EXPECTED = {
    'skeleton_prior': ['prior skeletons', 'speed-up vs per-skeleton loop'],
    'equiv_loss': ['equiv. loss time', 'equiv. loss peak memory', 'loss value, max abs diff',
                   'grad (query maps), max abs diff'],
    'crop_prep': ['crop preparation, 2 workers vs 1'],
    'pipeline': ['pipeline throughput', 'peer resizes with'],
    'iteration': ['iteration time vs DenseCL', 'iteration time vs MoCoV2',
                  'training peak memory vs DenseCL'],
    'vis_hook': ['training time with the hook (tiny config', 'training time with the hook (R50'],
}


# ----------------------------------------------------------------------------- benchlib
@pytest.mark.parametrize('op,threshold,value,passed', [
    ('<=', 1.1, 1.1, True), ('<=', 1.1, 1.1000001, False), ('<', 0.5, 0.5, False),
    ('<', 0.5, 0.49, True), ('>=', 50.0, 49.9, False), ('>=', 50.0, 50.0, True),
    ('>', 1.0, 1.0, False), ('>', 1.0, 1.01, True)])
def test_figure_target_on_ratio(op, threshold, value, passed):
    fig = benchlib.figure('f', 3.0, 's', peer='p', peer_value=2.0, ratio=value,
                          ratio_def='ours / peer', target_op=op, threshold=threshold)
    assert fig['passed'] is passed
    assert fig['target'] == dict(on='ratio', op=op, threshold=threshold)
    assert fig['value'] == 3.0 and fig['peer_value'] == 2.0 and fig['ratio'] == value


def test_figure_target_on_value_ignores_ratio():
    fig = benchlib.figure('f', 0.4, 's', target_on='value', target_op='<', threshold=0.5,
                          ratio=100.0, ratio_def='x')
    assert fig['passed'] is True
    fig = benchlib.figure('f', 0.6, 's', target_on='value', target_op='<', threshold=0.5,
                          ratio=0.0, ratio_def='x')
    assert fig['passed'] is False


def test_figure_rejects_bad_targets():
    with pytest.raises(ValueError, match='target_op'):
        benchlib.figure('f', 1.0, 's', target_op='==', threshold=1.0, ratio=1.0)
    with pytest.raises(ValueError, match='target_on'):
        benchlib.figure('f', 1.0, 's', target_op='<=', threshold=1.0, target_on='peer')
    with pytest.raises(ValueError, match='ratio but it is None'):
        benchlib.figure('f', 1.0, 's', target_op='<=', threshold=1.0)


def test_markdown_table_rows_results_and_notes():
    figs = [
        benchlib.figure('a', 2.0, 's', peer='P', peer_value=1.0, ratio=2.0,
                        ratio_def='ours / peer', target_op='<=', threshold=1.1, note='n1'),
        benchlib.figure('b', 0.1, 's', target_on='value', target_op='<', threshold=0.5),
    ]
    figs[0]['benchmark'], figs[1]['benchmark'] = 'x', 'y'
    table = benchlib.markdown_table(figs, with_benchmark=True)
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(rows) == 3  # header + 2 figures
    assert rows[1].startswith('| x | a [1] |') and rows[1].endswith('| FAIL |')
    assert rows[2].startswith('| y | b |') and rows[2].endswith('| PASS |')
    assert '[1] n1' in table
    assert all(row.count('|') == 9 for row in rows)


def test_require_reports_missing_components_clearly(tmp_path, monkeypatch):
    with pytest.raises(benchlib.MissingComponent, match='helper Z.*does not exist'):
        benchlib.require('liftedcl_mm_no_such_module.sub', 'X', 'helper Z')
    with pytest.raises(benchlib.MissingComponent, match='has no attribute `no_such_name`'):
        benchlib.require('json', 'no_such_name')
    assert benchlib.require('json', 'dumps') is json.dumps
    # A module that exists but fails to import for another reason is a crash, not "missing".
    (tmp_path / 'bench_broken_mod.py').write_text('import no_such_dependency_xyz\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match='no_such_dependency_xyz'):
        benchlib.require('bench_broken_mod')
    with pytest.raises(benchlib.MissingComponent, match='nope.txt'):
        benchlib.require_file(tmp_path / 'nope.txt', 'a file')


def test_main_guard_exit_status():
    def missing():
        raise benchlib.MissingComponent('thing X is missing')

    with pytest.raises(SystemExit) as exc:
        benchlib.main_guard(missing)
    assert exc.value.code == benchlib.EXIT_MISSING

    def crash():
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        benchlib.main_guard(crash)


def test_peak_rss_sees_an_allocation_and_resets():
    # In a fresh process: inside a long pytest run freed heap pages are still resident, so a
    # new allocation need not raise RSS (the benchmarks measure in fresh processes too).
    code = textwrap.dedent("""
        import sys
        import numpy as np
        sys.path.insert(0, %r)
        import benchlib
        assert benchlib.reset_peak_rss(), '/proc/self/clear_refs is not writable'
        before = benchlib.proc_status()
        size = 64 * 2**20
        block = np.ones(size // 8)  # touched, so resident
        during = benchlib.proc_status()
        del block
        after = benchlib.proc_status()
        assert during['VmRSS'] - before['VmRSS'] >= 0.9 * size, (before, during)
        assert after['VmHWM'] >= before['VmRSS'] + 0.9 * size  # the peak is remembered
        assert benchlib.reset_peak_rss()
        assert benchlib.proc_status()['VmHWM'] < after['VmHWM'] - 0.5 * size
        print('ok')
    """) % str(BENCH)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-2000:]


def test_machine_info_fields():
    info = benchlib.machine_info()
    assert info['cores'] == os.cpu_count()
    assert info['versions']['torch'] and info['versions']['mmpretrain']
    assert isinstance(info['cpu'], str) and info['cpu']


# ----------------------------------------------------------------------------- scripts' helpers
def test_iteration_amp_conversion():
    import bench_iteration
    plain = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    assert bench_iteration._to_amp(plain)['type'] == 'AmpOptimWrapper'
    assert plain['type'] == 'OptimWrapper'  # not modified in place
    gd = dict(constructor='GeneratorDiscriminatorOptimWrapperConstructor',
              generator=dict(type='OptimWrapper', optimizer=dict(type='SGD')),
              discriminator=dict(optimizer=dict(type='SGD')))
    out = bench_iteration._to_amp(gd)
    assert out['generator']['type'] == 'AmpOptimWrapper'
    assert out['discriminator']['type'] == 'AmpOptimWrapper'
    assert out['constructor'] == gd['constructor']
    other = dict(type='MyWrapper', optimizer=dict(type='SGD'))
    assert bench_iteration._to_amp(other)['type'] == 'MyWrapper'


def test_iteration_batch_has_overlapping_views():
    import torch

    import bench_iteration
    batch = bench_iteration.make_batch(6, 32, seed=3)
    assert [tuple(x.shape) for x in batch['inputs']] == [(6, 3, 32, 32)] * 2
    assert all(x.dtype == torch.uint8 for x in batch['inputs'])
    height, width = bench_iteration.ORI_SHAPE
    for sample in batch['data_samples']:
        boxes, flips = sample.view_bboxes, sample.view_flips
        assert boxes.shape == (2, 4) and boxes.dtype == np.float32
        assert flips.shape == (2, ) and flips.dtype == bool
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= height).all()
        (a, b) = boxes
        inter_w = min(a[2], b[2]) - max(a[0], b[0])
        inter_h = min(a[3], b[3]) - max(a[1], b[1])
        assert inter_w > 0 and inter_h > 0
        for box in boxes:  # RandomResizedCrop range: 0.2 to 1 of the area (rounding aside)
            area = (box[2] - box[0]) * (box[3] - box[1])
            assert 0.19 * height * width <= area <= height * width


def test_pipeline_crop_update_reaches_nested_views():
    import bench_pipeline
    view = [dict(type='RandomResizedCrop', scale=224, backend='pillow'),
            dict(type='RandomFlip', prob=0.5)]
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='MultiView', num_views=2, transforms=[view]),
                dict(type='PackInputs')]
    assert bench_pipeline._set_crop(pipeline, ('RandomResizedCrop', ), scale=256) == 1
    assert view[0]['scale'] == 256 and view[1] == dict(type='RandomFlip', prob=0.5)
    assert bench_pipeline._crop_backend(pipeline) == 'pillow'
    assert bench_pipeline._set_crop(pipeline, ('Nothing', ), scale=1) == 0


def test_crop_prep_enlarges_coco(tmp_path):
    import bench_crop_prep
    src = tmp_path / 'src'
    (src / 'annotations').mkdir(parents=True)
    (src / 'train2017').mkdir()
    for name in ('a.jpg', 'b.jpg'):
        (src / 'train2017' / name).write_bytes(name.encode())
    coco = dict(images=[dict(id=1, file_name='a.jpg', width=4, height=4),
                        dict(id=7, file_name='b.jpg', width=4, height=4)],
                annotations=[dict(id=3, image_id=1, bbox=[0, 0, 1, 1]),
                             dict(id=5, image_id=7, bbox=[0, 0, 1, 1]),
                             dict(id=6, image_id=7, bbox=[0, 0, 2, 2])],
                categories=[dict(id=1, name='person')])
    (src / 'annotations' / 'person_keypoints_train2017.json').write_text(json.dumps(coco))
    dst = tmp_path / 'dst'
    assert bench_crop_prep.enlarge_coco(src, dst, 'train2017', 3) == 6
    out = json.loads((dst / 'annotations' / 'person_keypoints_train2017.json').read_text())
    img_ids = [img['id'] for img in out['images']]
    ann_ids = [ann['id'] for ann in out['annotations']]
    assert len(set(img_ids)) == 6 and len(set(ann_ids)) == 9
    by_id = {img['id']: img for img in out['images']}
    for ann in out['annotations']:  # every copy points at a copy of its own source image
        src_img = next(i for i in coco['images']
                       if by_id[ann['image_id']]['file_name'].endswith('_' + i['file_name']))
        assert any(a['image_id'] == src_img['id'] and a['bbox'] == ann['bbox']
                   for a in coco['annotations'])
    for img in out['images']:
        assert (dst / 'train2017' / img['file_name']).read_bytes() == \
            img['file_name'].split('_', 1)[1].encode()
    assert out['categories'] == coco['categories']


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_run_all_quick_produces_every_figure(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / 'run_all.py'), '--quick', '--out-dir',
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / 'latest_quick.json').read_text())
    assert not (tmp_path / 'latest.json').exists()  # a smoke run never replaces real numbers
    assert result['errors'] == {}
    assert result['quick'] is True
    assert result['machine']['cores'] == os.cpu_count()
    assert set(result['benchmarks']) == set(EXPECTED)
    names = {}
    for fig in result['figures']:
        names.setdefault(fig['benchmark'], []).append(fig['name'])
        assert isinstance(fig['value'], float) and math.isfinite(fig['value']), fig
        target = fig['target']
        assert target['op'] in ('<=', '<', '>=', '>'), fig
        assert isinstance(target['threshold'], float) and math.isfinite(target['threshold'])
        subject = fig['ratio'] if target['on'] == 'ratio' else fig['value']
        assert isinstance(subject, float) and math.isfinite(subject), fig
        assert isinstance(fig['passed'], bool)
        if fig['peer'] is not None:
            assert isinstance(fig['peer_value'], float) and math.isfinite(fig['peer_value'])
    for bench, wanted in EXPECTED.items():
        for part in wanted:
            assert any(part in name for name in names.get(bench, [])), (bench, part, names)
    md = (tmp_path / 'latest_quick.md').read_text()
    assert md.count('| PASS |') + md.count('| FAIL |') == len(result['figures'])
    for bench in EXPECTED:  # each benchmark's own JSON is written too
        assert json.loads((tmp_path / f'{bench}_quick.json').read_text())['figures']
