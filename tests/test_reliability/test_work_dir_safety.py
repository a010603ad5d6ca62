"""Issue 13, items 1, 2, 4 and 8: a run's checkpoints are never overwritten, ``--resume auto``
falls back to the newest checkpoint that verifies, every checkpoint read is ``weights_only``
(also under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), zip CRCs are checked, and legacy-format
files are read the same way everywhere."""
import os
import os.path as osp
import shutil
import zipfile

import pytest
import torch

import liftedcl_mm  # noqa: F401
from liftedcl_mm.testing.reliability import run_python
from liftedcl_mm.utils.checkpoint import load_checkpoint_safely, verify_zip_crc
from liftedcl_mm.utils.work_dir import (check_no_overwrite, list_checkpoints,
                                        resolve_auto_resume, verify_checkpoint)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
TINY = osp.join(ROOT, 'configs', 'liftedcl_tiny_demo.py')


def _train(work, *extra, iters=2):
    return run_python([TRAIN, TINY, '--work-dir', str(work), *extra, '--cfg-options',
                       f'train_cfg.max_iters={iters}', 'default_hooks.checkpoint.interval=1'])


def _flip_byte_in_tensor_data(path):
    """Flip one byte inside a stored tensor's data record (not in the zip bookkeeping)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if '/data/' in i.filename),
                   key=lambda i: i.file_size)
        # local header: 30 bytes + name + extra field, then the (stored) data
        with open(path, 'rb') as f:
            f.seek(info.header_offset + 26)
            name_len = int.from_bytes(f.read(2), 'little')
            extra_len = int.from_bytes(f.read(2), 'little')
    offset = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    with open(path, 'r+b') as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))
    return info.filename


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny run of 3 iterations, a checkpoint every iteration (iter_2/3.pth are kept)."""
    work = tmp_path_factory.mktemp('work_dir_safety') / 'work'
    proc = _train(work, iters=3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def _copy(trained, tmp_path):
    work = tmp_path / 'work'
    shutil.copytree(trained, work)
    marker = work / 'last_checkpoint'  # as if the run had been in this folder
    marker.write_text(marker.read_text().replace(str(trained), str(work)))
    return work


# ------------------------------------------------------------ 1. never overwrite a run
def test_rerun_without_resume_is_refused_and_changes_nothing(trained, tmp_path):
    work = _copy(trained, tmp_path)
    before = {p: os.stat(work / p).st_mtime_ns for p in os.listdir(work)}
    proc = _train(work)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: work dir') and 'iter_3.pth' in last
    assert '--resume auto' in last and '--overwrite' in last
    assert {p: os.stat(work / p).st_mtime_ns for p in os.listdir(work)} == before
    with pytest.raises(FileExistsError):
        check_no_overwrite(str(work))


def test_overwrite_flag_starts_over(trained, tmp_path):
    work = _copy(trained, tmp_path)
    proc = _train(work, '--overwrite', iters=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Iter(train) [1/1]' in proc.stdout + proc.stderr


def test_resume_auto_without_last_checkpoint_takes_newest(trained, tmp_path):
    work = _copy(trained, tmp_path)
    os.remove(work / 'last_checkpoint')
    # the tiny config keeps the 2 newest checkpoints
    assert [osp.basename(p) for p in list_checkpoints(str(work))] == ['iter_3.pth', 'iter_2.pth']
    proc = _train(work, '--resume', 'auto', iters=4)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'iter_3.pth' in log and 'Iter(train) [4/4]' in log
    assert 'Iter(train) [1/4]' not in log  # did not restart from 0
    assert load_checkpoint_safely(work / 'iter_4.pth')['meta']['iter'] == 4


@pytest.mark.parametrize('damage', ['missing', 'empty', 'bitflip'])
def test_resume_auto_falls_back_past_a_bad_latest(trained, tmp_path, damage):
    work = _copy(trained, tmp_path)
    latest = work / 'iter_3.pth'
    if damage == 'missing':
        os.remove(latest)
    elif damage == 'empty':
        latest.write_bytes(b'')
    else:
        _flip_byte_in_tensor_data(latest)
    messages = []
    chosen = resolve_auto_resume(str(work), log=messages.append)
    assert osp.basename(chosen) == 'iter_2.pth'
    if damage != 'missing':
        assert 'iter_3.pth' in messages[0] and 'iter_2.pth' in messages[0]
    proc = _train(work, '--resume', 'auto', iters=3)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'iter_2.pth' in log and 'Iter(train) [3/3]' in log
    assert 'Iter(train) [1/3]' not in log


def test_resume_auto_with_nothing_good_stops_and_lists(trained, tmp_path):
    work = _copy(trained, tmp_path)
    for name in ('iter_2.pth', 'iter_3.pth'):
        (work / name).write_bytes(b'not a checkpoint')
    proc = _train(work, '--resume', 'auto')
    assert proc.returncode != 0
    err = proc.stderr
    assert 'no checkpoint' in err and all(n in err for n in ('iter_2.pth', 'iter_3.pth'))
    assert 'Traceback' not in err
    assert (work / 'iter_3.pth').read_bytes() == b'not a checkpoint'  # nothing overwritten


# ------------------------------------------------------------ 4. bit flips: zip CRCs
def test_bit_flip_in_stored_tensor_is_caught(trained, tmp_path):
    path = tmp_path / 'flipped.pth'
    shutil.copy(trained / 'iter_3.pth', path)
    member = _flip_byte_in_tensor_data(path)
    with pytest.raises(ValueError, match='CRC') as info:
        load_checkpoint_safely(path)
    assert member in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ValueError, match='CRC'):
        verify_zip_crc(str(path))
    assert 'CRC' in verify_checkpoint(str(path))
    proc = run_python([TRAIN, TINY, '--work-dir', str(tmp_path / 'w'), '--resume', str(path)])
    assert proc.returncode != 0 and 'CRC' in proc.stderr.strip().splitlines()[-1]


# ------------------------------------------------------------ 2 + 8. one loader, legacy files
def test_mmengine_loader_is_ours_under_force_no_weights_only(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    from liftedcl_mm.utils.checkpoint import UnsafeCheckpointError

    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {tmp_path / "pwned"}', ))

    evil = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, x=Payload()), evil)
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    try:
        with pytest.raises(UnsafeCheckpointError, match='system'):
            CheckpointLoader.load_checkpoint(str(evil), map_location='cpu')
    finally:
        os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    assert not (tmp_path / 'pwned').exists()


def test_legacy_format_checkpoint_resumes_and_converts(trained, tmp_path):
    ckpt = load_checkpoint_safely(trained / 'iter_2.pth')
    legacy = tmp_path / 'legacy_iter_2.pth'
    torch.save(ckpt, legacy, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(legacy)
    assert verify_checkpoint(str(legacy)) is None
    proc = run_python([TRAIN, TINY, '--work-dir', str(tmp_path / 'w'), '--resume', str(legacy),
                       '--cfg-options', 'train_cfg.max_iters=3'])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Iter(train) [3/3]' in log and 'Iter(train) [1/3]' not in log
    out = tmp_path / 'backbone.pth'
    proc = run_python([osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py'),
                       str(legacy), str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.equal(torch.load(out)['conv1.weight'], ckpt['state_dict']['backbone.conv1.weight'])


# ------------------------------------------------------------ resume reads the file once
def test_resume_auto_reads_the_checkpoint_once_before_the_runner(trained, tmp_path,
                                                                 monkeypatch):
    """``--resume auto`` used to read a checkpoint ~4x before the runner loaded it (CRC pass on
    choosing it, again before building, then a full load and CRC pass to compare shapes)."""
    import importlib.util

    from mmengine.runner import Runner
    work = _copy(trained, tmp_path)
    spec = importlib.util.spec_from_file_location('train_tool', TRAIN)
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    crc_passes, full_loads, started = [], [], []
    testzip = zipfile.ZipFile.testzip
    load = torch.load

    def counting_testzip(archive):
        crc_passes.append(archive.filename)
        return testzip(archive)

    def counting_load(path, *args, **kwargs):
        if not kwargs.get('mmap'):
            full_loads.append(str(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, 'testzip', counting_testzip)
    monkeypatch.setattr(torch, 'load', counting_load)
    monkeypatch.setattr(Runner, 'train', lambda runner: started.append(runner.cfg.load_from))
    train.main([TINY, '--work-dir', str(work), '--resume', 'auto'])
    latest = str(work / 'iter_3.pth')
    assert started == [latest]
    assert crc_passes == [latest]  # one pass, when --resume auto chose it
    assert latest not in full_loads  # shapes were compared on the mapped file

