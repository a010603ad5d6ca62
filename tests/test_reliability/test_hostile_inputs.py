"""Hostile and broken input, fed through the paths a user takes: checkpoints whose unpickling
would run code (resume, ``init_cfg`` of MMPose and LiftedCL, ``load_from``, the backbone
converter), broken datasets through the config's dataloader, broken COCO input through the crop
tool, and losses that turn non-finite in a real training run.

Each malformed input must be rejected with an error naming the file/entry and the problem, or,
with the skip option, skipped and counted. Odd but valid inputs must train without NaN.
"""
import builtins
import json
import os
import os.path as osp
import pathlib
import pickle
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import liftedcl_mm  # noqa: F401
from liftedcl_mm.testing.reliability import run_python
from liftedcl_mm.utils import UnsafeCheckpointError, load_checkpoint_safely

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
EXTRACT = osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')
DEMO = osp.join(ROOT, 'data', 'demo', 'coco_human')
DEMO_COCO = osp.join(ROOT, 'data', 'demo', 'coco')
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
import prepare_coco_human_crops as crop_tool  # noqa: E402



def _run(args, timeout=240):
    return run_python(args, timeout)


def _last_line(text):
    return [line for line in text.strip().splitlines() if line.strip()][-1]


# ============================================================ checkpoints that run code
class _Reduce:
    """Unpickles as ``fn(*args)``; callable so that it can itself be the ``fn`` of another."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args

    def __call__(self):
        raise AssertionError('only meant to be pickled')


def _payloads(marker):
    """Objects whose unpickling would create ``marker`` (each by another route)."""
    marker = str(marker)
    touch_method = _Reduce(getattr, (pathlib.PosixPath(marker), 'touch'))
    return {
        'os.system': _Reduce(os.system, (f'touch {marker}', )),
        'subprocess.call': _Reduce(subprocess.call, (['touch', marker], )),
        'builtins.exec': _Reduce(builtins.exec, (f'open({marker!r}, "w").close()', )),
        'builtins.eval': _Reduce(builtins.eval, (f'open({marker!r}, "w")', )),
        # getattr is mapped to a stand-in that only resolves HistoryBuffer statistics
        'getattr(Path).touch': _Reduce(touch_method, ()),
        'shutil.copyfile': _Reduce(shutil.copyfile, (__file__, marker)),
    }


def _evil_checkpoint(path, payload, legacy=False):
    """A real-looking MMEngine checkpoint carrying ``payload`` in its meta."""
    state = {'backbone.conv1.weight': torch.randn(8, 3, 7, 7), 'queue_inv.ptr': torch.zeros(())}
    ckpt = dict(meta=dict(iter=2, seed=0, hook=payload), state_dict=state,
                message_hub=dict(runtime_info=dict(iter=1)))
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return str(path)


def _assert_refused(err_text, marker, unsafe='system'):
    assert not osp.exists(marker), 'the pickle payload was executed'
    # torch / our loader name the refused global
    assert unsafe in err_text, err_text[-2000:]
    assert any(w in err_text for w in ('not allow-listed', 'unsupported GLOBAL',
                                         'Unsupported global')), err_text[-2000:]


PAYLOAD_NAMES = list(_payloads('x'))
FORMATS = ['zip', 'legacy', 'raw_pickle']


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('name', PAYLOAD_NAMES)
def test_safe_loader_refuses_every_payload(tmp_path, name, fmt):
    marker = tmp_path / 'pwned'
    payload = _payloads(marker)[name]
    path = tmp_path / 'evil.pth'
    if fmt == 'raw_pickle':
        path.write_bytes(pickle.dumps(dict(state_dict={}, meta=payload), protocol=2))
    else:
        _evil_checkpoint(path, payload, legacy=fmt == 'legacy')
    with pytest.raises(ValueError) as info:  # UnsafeCheckpointError is a ValueError
        load_checkpoint_safely(path)
    assert not marker.exists(), 'the pickle payload was executed'
    msg = str(info.value)
    assert str(path) in msg
    if fmt != 'raw_pickle':
        # a torch checkpoint: refused as unsafe, naming the global
        assert isinstance(info.value, UnsafeCheckpointError), msg
        assert 'arbitrary code' in msg
        # torch pickles with protocol 2, which names subprocess.call "commands.call"
        expected = {'os.system': 'system', 'subprocess.call': '.call',
                    'builtins.exec': 'exec', 'builtins.eval': 'eval',
                    'getattr(Path).touch': 'PosixPath', 'shutil.copyfile': 'copyfile'}[name]
        assert expected in msg, msg


@pytest.fixture(scope='module')
def evil(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('evil')
    marker = tmp / 'pwned'
    return _evil_checkpoint(tmp / 'evil.pth', _payloads(marker)['os.system']), marker


def test_train_resume_refuses_code_carrying_checkpoint(evil, tmp_path):
    path, marker = evil
    work = tmp_path / 'work'
    proc = _run([TRAIN, TINY, '--work-dir', str(work), '--resume', path])
    assert proc.returncode != 0
    _assert_refused(proc.stderr, marker)
    # refused before anything is built, with our message naming the file and the global
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: Refusing to load checkpoint') and str(path) in last, last
    assert 'system' in last and 'Traceback' not in proc.stderr
    assert not (work / 'last_checkpoint').exists()


@pytest.mark.parametrize('entry', ['test.py', 'train.py init_cfg'])
def test_tools_refuse_under_force_no_weights_only(evil, tmp_path, entry):
    """Issue 13.2: torch's escape hatch must not reopen the tools' MMEngine loading paths."""
    path, marker = evil
    if entry == 'test.py':
        args = [osp.join(osp.dirname(TRAIN), 'test.py'),
                osp.join(osp.dirname(osp.dirname(TRAIN)), 'configs', 'mmpose',
                         'simplebaseline_tiny_demo.py'), path, '--work-dir', str(tmp_path / 'w')]
    else:
        args = [TRAIN, TINY, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                'model.backbone.init_cfg.type=Pretrained',
                f'model.backbone.init_cfg.checkpoint={path}']
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    proc = subprocess.run([sys.executable] + args, cwd=osp.dirname(osp.dirname(TRAIN)),
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode != 0
    _assert_refused(proc.stderr, marker)
    assert 'Refusing to load checkpoint' in proc.stderr and path in proc.stderr
    assert 'weights_only=False' not in proc.stderr  # not torch's advice to unpickle anyway


def test_mmpose_init_cfg_pretrained_refuses(evil):
    path, marker = evil
    from mmpose.registry import MODELS as MMPOSE_MODELS
    init_default_scope('mmpose')
    backbone = MMPOSE_MODELS.build(dict(
        type='ResNet', depth=18, init_cfg=dict(type='Pretrained', checkpoint=path)))
    # Our one-line refusal, also with torch's escape hatch set (MMEngine's loader passes no
    # weights_only; ours, registered on import, passes True explicitly).
    for force in ('0', '1'):
        os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = force
        try:
            with pytest.raises(UnsafeCheckpointError, match='posix.system') as info:
                backbone.init_weights()
        finally:
            os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
        _assert_refused(str(info.value), marker)
    # control: the same path reads a clean checkpoint (with numpy objects in its meta)
    clean = osp.join(osp.dirname(path), 'clean.pth')
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
             for k, v in backbone.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(hist=np.arange(3.0), seed=np.int64(0))), clean)
    good = MMPOSE_MODELS.build(dict(
        type='ResNet', depth=18, init_cfg=dict(type='Pretrained', checkpoint=clean)))
    good.init_weights()
    assert torch.equal(good.conv1.weight, state['conv1.weight'])


def test_liftedcl_init_cfg_and_load_from_refuse(evil):
    path, marker = evil
    init_default_scope('liftedcl_mm')
    from liftedcl_mm.registry import MODELS
    cfg = Config.fromfile(TINY).model
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=path)
    model = MODELS.build(cfg)
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    try:
        with pytest.raises(UnsafeCheckpointError, match='posix.system') as info:
            model.init_weights()
        _assert_refused(str(info.value), marker)
        # what Runner does for load_from / --resume
        from mmengine.runner import load_checkpoint
        with pytest.raises(UnsafeCheckpointError, match='posix.system') as info:
            load_checkpoint(model, path, map_location='cpu')
        _assert_refused(str(info.value), marker)
    finally:
        os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')


def test_extract_backbone_refuses(evil, tmp_path):
    path, marker = evil
    out = tmp_path / 'backbone.pth'
    proc = _run([EXTRACT, path, str(out)], timeout=120)
    assert proc.returncode != 0 and not out.exists()
    _assert_refused(proc.stderr, marker)
    last = _last_line(proc.stderr)
    assert 'UnsafeCheckpointError' in last and path in last and 'posix.system' in last


# ============================================================ broken datasets (dataloader)
@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / 'coco_human'
    shutil.copytree(DEMO, root)
    return root


def _ann(root):
    return root / 'annotations' / 'train2017.json'


def _crop(root, name):
    return root / 'crops' / 'train2017' / name


def _entries(root):
    with open(_ann(root)) as f:
        return json.load(f)['data_list']


def _write_entries(root, entries, metainfo=None):
    _ann(root).write_text(json.dumps(dict(metainfo=metainfo or {}, data_list=entries)))


def _dataloader_cfg(root, batch_size=None, **dataset_overrides):
    cfg = Config.fromfile(TINY).train_dataloader
    if batch_size is not None:
        cfg.batch_size = batch_size
    cfg.dataset.data_root = str(root) + '/'
    cfg.dataset.update(dataset_overrides)
    return cfg


def _first_batch(root, batch_size=None, **dataset_overrides):
    init_default_scope('liftedcl_mm')
    loader = Runner.build_dataloader(
        _dataloader_cfg(root, batch_size, **dataset_overrides), seed=0)
    return next(iter(loader)), loader


# (name, how the annotation file is broken, text the error must contain)
ANNOTATION_CASES = [
    ('empty file', '', 'is empty'),
    ('only whitespace', ' \n\t\n', 'is empty'),
    ('not JSON', '{"data_list": [{"img_path": ', 'not valid JSON'),
    ('a JSON list', '[{"img_path": "1_11.jpg"}]', '"data_list"'),
    ('data_list is null', '{"data_list": null}', '"data_list"'),
    ('data_list is empty', '{"metainfo": {}, "data_list": []}', 'no usable crop'),
]


@pytest.mark.parametrize('name,text,needle', ANNOTATION_CASES, ids=[c[0] for c in ANNOTATION_CASES])
def test_broken_annotation_file(data_root, name, text, needle):
    _ann(data_root).write_text(text)
    with pytest.raises(ValueError) as info:
        _first_batch(data_root)
    assert needle in str(info.value) and 'train2017.json' in str(info.value)


# (name, function breaking entry 1 of the list, text the error must contain)
ENTRY_CASES = [
    ('missing img_path', lambda e: {k: v for k, v in e.items() if k != 'img_path'},
     'lacks the fields'),
    ('entry is a number', lambda e: 7, 'lacks the fields'),
    ('img_path is a number', lambda e: dict(e, img_path=123), 'invalid img_path'),
    ('img_path is empty', lambda e: dict(e, img_path=''), 'invalid img_path'),
    ('crop file missing', lambda e: dict(e, img_path='no_such_crop.jpg'),
     'no_such_crop.jpg does not exist'),
    ('crop path is a folder', lambda e: dict(e, img_path='../train2017'), 'does not exist'),
]


@pytest.mark.parametrize('name,mutate,needle', ENTRY_CASES, ids=[c[0] for c in ENTRY_CASES])
def test_broken_entry_raises_or_is_skipped_and_counted(data_root, name, mutate, needle):
    entries = _entries(data_root)[:5]
    entries[1] = mutate(dict(entries[1]))
    _write_entries(data_root, entries)
    with pytest.raises(ValueError) as info:
        _first_batch(data_root)
    msg = str(info.value)
    assert needle in msg and 'entry 1 ' in msg and 'train2017.json' in msg
    assert 'skip_bad=True' in msg  # says how to skip
    # with the option: skipped, counted in the log, and the rest trains
    log = _capture_log(data_root.parent)
    batch, loader = _first_batch(data_root, skip_bad=True)
    assert loader.dataset.num_skipped == 1 and len(loader.dataset) == 4
    assert len(batch['data_samples']) == 4
    assert 'train2017.json: skipped 1 malformed or missing entries' in log.read_text()


def _capture_log(folder):
    """Make a fresh MMLogger (writing to a file) the current one; returns the file."""
    from mmengine.logging import MMLogger
    path = folder / f'log_{len(list(folder.glob("log_*.txt")))}.txt'
    MMLogger.get_instance(f'reliability_{path}', log_file=str(path))
    return path


def _truncated(data):
    return data[:len(data) // 2]


# (name, function of the good JPEG bytes giving the broken file's bytes, text in the error)
IMAGE_CASES = [
    ('truncated JPEG', _truncated, 'truncated JPEG'),
    ('JPEG markers around garbage', lambda d: d[:2] + os.urandom(600) + b'\xff\xd9',
     'could not be decoded'),
    ('random bytes', lambda d: os.urandom(900), 'could not be decoded'),
    ('empty file', lambda d: b'', 'is empty'),
    ('text file', lambda d: b'<html>404 not found</html>', 'could not be decoded'),
    ('JPEG header only', lambda d: d[:20], 'truncated JPEG'),
]


@pytest.mark.parametrize('name,corrupt,needle', IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_corrupt_crop_named_in_the_error(data_root, name, corrupt, needle):
    entries = _entries(data_root)[:3]
    _write_entries(data_root, entries)
    victim = _crop(data_root, entries[2]['img_path'])
    victim.write_bytes(corrupt(victim.read_bytes()))
    with pytest.raises(ValueError) as info:
        _first_batch(data_root, batch_size=3)
    msg = str(info.value)
    assert needle in msg and entries[2]['img_path'] in msg
    # LoadImageWithCheck(ignore_empty=True): the dataset draws another sample instead
    pipeline = _dataloader_cfg(data_root).dataset.pipeline
    pipeline[0] = dict(type='LoadImageWithCheck', ignore_empty=True)
    log = _capture_log(data_root.parent)
    batch, _ = _first_batch(data_root, batch_size=3, pipeline=pipeline)
    paths = [osp.basename(s.img_path) for s in batch['data_samples']]
    assert len(paths) == 3 and entries[2]['img_path'] not in paths
    skipped = [line for line in log.read_text().splitlines() if 'skipping image' in line]
    assert skipped and all(entries[2]['img_path'] in line and needle in line
                           for line in skipped)


def test_crop_deleted_after_the_dataset_was_built(data_root):
    entries = _entries(data_root)[:2]
    _write_entries(data_root, entries)
    init_default_scope('liftedcl_mm')
    loader = Runner.build_dataloader(_dataloader_cfg(data_root, batch_size=2), seed=0)
    _crop(data_root, entries[0]['img_path']).unlink()
    with pytest.raises(FileNotFoundError, match=entries[0]['img_path'] + ' does not exist'):
        next(iter(loader))


def test_missing_annotation_file_and_image_folder(data_root):
    _ann(data_root).unlink()
    with pytest.raises(FileNotFoundError, match='train2017.json does not exist'):
        _first_batch(data_root)
    with pytest.raises(FileNotFoundError, match='crops/elsewhere'):
        _first_batch(data_root, ann_file=str(DEMO) + '/annotations/train2017.json',
                     data_prefix=dict(img_path='crops/elsewhere/'))


def test_train_names_a_corrupt_crop(data_root, tmp_path):
    """The same through tools/train.py: exit status 1 and the last line names the file."""
    entries = _entries(data_root)[:4]
    _write_entries(data_root, entries)
    victim = _crop(data_root, entries[3]['img_path'])
    victim.write_bytes(_truncated(victim.read_bytes()))
    proc = _run([TRAIN, TINY, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                 f'train_dataloader.dataset.data_root={data_root}/', 'train_cfg.max_iters=2'])
    assert proc.returncode != 0
    last = _last_line(proc.stderr)
    assert 'ValueError' in last and str(victim) in last and 'truncated JPEG' in last


# ============================================================ odd but valid images: no NaN
def _odd_images():
    rng = np.random.default_rng(0)
    return {
        '1x1.jpg': rng.integers(0, 255, (1, 1, 3), dtype=np.uint8),
        '2x300.jpg': rng.integers(0, 255, (2, 300, 3), dtype=np.uint8),
        '300x2.jpg': rng.integers(0, 255, (300, 2, 3), dtype=np.uint8),
        'black.jpg': np.zeros((40, 30, 3), np.uint8),
        'white.jpg': np.full((40, 30, 3), 255, np.uint8),
        'gray.jpg': rng.integers(0, 255, (50, 40), dtype=np.uint8),
        'png_named_jpg.jpg': 'png',
        'big.jpg': rng.integers(0, 255, (1200, 900, 3), dtype=np.uint8),
    }


def test_odd_but_valid_images_train_without_nan(data_root):
    from mmengine.optim import build_optim_wrapper

    from liftedcl_mm.registry import MODELS
    entries = []
    for name, img in _odd_images().items():
        path = _crop(data_root, name)
        if isinstance(img, str):
            ok, buf = cv2.imencode('.png', np.full((30, 20, 3), 77, np.uint8))
            path.write_bytes(buf.tobytes())
        else:
            cv2.imwrite(str(path), img)
        entries.append(dict(img_path=name))
    _write_entries(data_root, entries)
    torch.manual_seed(0)
    init_default_scope('liftedcl_mm')
    cfg = Config.fromfile(TINY)
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(_dataloader_cfg(data_root), seed=0)
    seen = set()
    for step, batch in zip(range(6), loader):
        seen.update(osp.basename(s.img_path) for s in batch['data_samples'])
        log = model.train_step(batch, optim)
        for key, value in log.items():
            assert torch.isfinite(value).all(), (step, key, sorted(seen))
    assert seen == set(_odd_images())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values()
               if v.is_floating_point())


# ============================================================ COCO input of the crop tool
def _coco(tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(osp.join(DEMO_COCO, 'train2017'), root / 'train2017')
    shutil.copytree(osp.join(DEMO_COCO, 'annotations'), root / 'annotations')
    with open(root / 'annotations' / 'person_keypoints_train2017.json') as f:
        return root, json.load(f)


def _save_coco(root, coco):
    (root / 'annotations' / 'person_keypoints_train2017.json').write_text(json.dumps(coco))


def _run_tool(root, out, *extra):
    return crop_tool.main(['--coco-root', str(root), '--split', 'train2017', '--out', str(out),
                           '--workers', '0', '--no-progress', *extra])


# annotation index -> (new bbox, text in the report); cases the crop tool's own tests lack
BOX_CASES = {
    0: ([float('nan'), 10.0, 20.0, 30.0], 'not 4 finite numbers'),
    1: ([10.0, 10.0, float('inf'), 30.0], 'not 4 finite numbers'),
    2: ([-500.0, -400.0, 100.0, 100.0], 'outside the'),  # left of and above the image
    3: ([10.0, 10.0, 20.0, 0.0], 'zero or negative size'),
    4: ([10.0, 10.0, -5.0, 30.0], 'zero or negative size'),
    5: ([1.0, 2.0, 3.0], 'not 4 finite numbers'),
    6: ('10 10 20 30', 'not 4 finite numbers'),
    7: ([True, 10, 20, 30], 'not 4 finite numbers'),
}


def test_crop_tool_reports_every_malformed_entry(tmp_path, capsys):
    root, coco = _coco(tmp_path)
    anns = coco['annotations']
    for index, (bbox, _) in BOX_CASES.items():
        anns[index]['bbox'] = bbox
    used = {a['image_id'] for a in anns[:8]}
    # images whose (good) boxes will be cropped
    free = sorted({a['image_id'] for a in anns[8:]} - used)
    by_id = {img['id']: img for img in coco['images']}
    # an image listed with the wrong size, one whose file is gone, one unknown image id
    wrong_size, gone = by_id[free[0]], by_id[free[1]]
    wrong_size['width'] += 7
    os.remove(root / 'train2017' / gone['file_name'])
    unknown = dict(anns[-1], id=999999, image_id=424242)
    anns.append(unknown)
    _save_coco(root, coco)
    out = tmp_path / 'out'
    assert _run_tool(root, out) == 1
    err = capsys.readouterr().err
    for index, (_, needle) in BOX_CASES.items():
        line = [l for l in err.splitlines() if f'annotation {anns[index]["id"]} ' in l]
        assert line and needle in line[0], (index, err)
    assert f'{wrong_size["file_name"]}: image is' in err and 'but the annotation says' in err
    line = [l for l in err.splitlines() if gone['file_name'] in l]
    assert line and 'No such file' in line[0], err
    assert 'annotation 999999 (image 424242): refers to an unknown' in err
    n_bad = len(BOX_CASES) + 3
    assert f'{n_bad} failed entries' in err
    # --skip-bad: the same entries are skipped and counted, the rest is listed
    assert _run_tool(root, out, '--skip-bad') == 0
    err = capsys.readouterr().err
    assert f'{n_bad} failed entries' in err
    with open(out / 'annotations' / 'train2017.json') as f:
        listed = json.load(f)['data_list']
    bad_ids = {anns[i]['id'] for i in BOX_CASES}
    assert listed and not bad_ids & {r['ann_id'] for r in listed}
    assert all(np.isfinite(r['ext_bbox']).all() for r in listed)


def test_crop_tool_with_no_person_boxes_then_dataset(tmp_path, capsys):
    root, coco = _coco(tmp_path)
    coco['annotations'] = []
    _save_coco(root, coco)
    out = tmp_path / 'out'
    _run_tool(root, out)
    assert '0 crops listed' in capsys.readouterr().out
    # the empty dataset is refused when training starts, naming the file
    with pytest.raises(ValueError, match='train2017.json lists no usable crop'):
        _first_batch(out)


# ============================================================ losses turning non-finite
def _nan_config(tmp_path, **model):
    model.setdefault('nonfinite', 'raise')
    extra = ''.join(f', {k}={v!r}' for k, v in model.items())
    path = tmp_path / 'tiny_nan.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = ['{TINY}']
        custom_imports = dict(imports=['liftedcl_mm', 'liftedcl_mm.testing.reliability'],
                              allow_failed_imports=False)
        model = dict({extra.lstrip(', ')})
        train_cfg = dict(max_iters=4)
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1))
        custom_hooks = [dict(type='NonFiniteLossHook', term='loss_equiv', at_iter=2)]
    '''))
    return str(path)


def _all_finite(ckpt):
    return all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if v.is_floating_point())


def test_nonfinite_loss_stops_the_run_naming_term_and_iteration(tmp_path):
    work = tmp_path / 'work'
    proc = _run([TRAIN, _nan_config(tmp_path), '--work-dir', str(work)])
    assert proc.returncode != 0
    last = _last_line(proc.stderr)
    assert 'FloatingPointError' in last and 'non-finite loss_equiv at iteration 2' in last
    # iterations 1-2 were saved, nothing after the bad one, nothing with NaN
    assert (work / 'iter_2.pth').exists() and not (work / 'iter_3.pth').exists()
    assert (work / 'last_checkpoint').read_text().strip().endswith('iter_2.pth')
    for step in (1, 2):
        assert _all_finite(load_checkpoint_safely(work / f'iter_{step}.pth'))


def test_nonfinite_loss_skipped_and_counted_when_asked(tmp_path):
    work = tmp_path / 'work'
    proc = _run([TRAIN, _nan_config(tmp_path, nonfinite='skip'), '--work-dir', str(work)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Iter(train) [3/4]' in log and 'nonfinite_skipped: 1.0000' in log
    assert 'nonfinite_skipped: 0.0000' in log  # before the bad iteration
    ckpt = load_checkpoint_safely(work / 'iter_4.pth')
    assert int(ckpt['state_dict']['nonfinite_skipped']) == 1
    assert int(ckpt['state_dict']['num_steps']) == 4
    assert int(ckpt['state_dict']['queue_inv.ptr']) == 3 * 4  # the skipped batch not enqueued
    for step in range(1, 5):
        assert _all_finite(load_checkpoint_safely(work / f'iter_{step}.pth'))


# ============================================================ the figures
def test_count_of_malformed_inputs():
    counts = dict(
        # + 7 entry points (2 of them under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1)
        code_carrying_checkpoints=len(PAYLOAD_NAMES) * len(FORMATS) + 7,
        annotation_files=len(ANNOTATION_CASES) + 2,  # + missing file, missing folder
        annotation_entries=len(ENTRY_CASES),
        image_files=len(IMAGE_CASES) + 2,  # + deleted after build, through tools/train.py
        coco_input_of_crop_tool=len(BOX_CASES) + 3 + 1)
    total = sum(counts.values())
    print(f'\nmalformed inputs tried: {total}, all rejected cleanly; {counts}; odd but valid '
          f'images accepted: {len(_odd_images())}, NaN: none; non-finite losses injected: 2, '
          'both stopped or skipped, no NaN checkpoint')
    assert total >= 50
