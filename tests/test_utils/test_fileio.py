"""``atomic_write``: complete files only, with the mode a plain ``open()`` gives (problem 2 of the
crop tool: mkstemp left every output ``-rw-------``)."""
import builtins
import importlib.util
import os
import os.path as osp
import stat
from collections import OrderedDict

import numpy as np
import pytest
import torch

from liftedcl_mm.utils import atomic_write, umask_mode
from liftedcl_mm.testing.reliability import umask
from liftedcl_mm.utils.fileio import TMP_PREFIX, current_umask

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXTRACT = osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py')


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _plain_open_mode(folder):
    """Mode of a file made by open() here (the reference, ACLs of the folder included)."""
    probe = osp.join(folder, 'probe')
    with open(probe, 'wb'):
        pass
    mode = _mode(probe)
    os.remove(probe)
    return mode


@pytest.mark.parametrize('mask,mode', [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640)])
def test_mode_follows_the_umask(tmp_path, mask, mode):
    with umask(mask):
        assert current_umask() == mask
        assert umask_mode() == mode and umask_mode(0o777) == 0o777 & ~mask
        atomic_write(str(tmp_path / 'a.bin'), b'abc')
        assert _mode(tmp_path / 'a.bin') == mode == _plain_open_mode(str(tmp_path))
        # replacing an existing file gives the new file the umask mode too
        os.chmod(tmp_path / 'a.bin', 0o600)
        atomic_write(str(tmp_path / 'a.bin'), b'def')
        assert _mode(tmp_path / 'a.bin') == mode
    assert (tmp_path / 'a.bin').read_bytes() == b'def'


def test_umask_read_without_proc(monkeypatch):
    # elsewhere than Linux: set-and-restore fallback, the umask unchanged afterwards
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith('/proc/'):
            raise OSError('no /proc here')
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, 'open', no_proc)
    with umask(0o027):
        assert current_umask() == 0o027
        assert current_umask() == 0o027


def test_content_kinds_and_no_leftovers(tmp_path):
    atomic_write(str(tmp_path / 'b.bin'), b'\x00\xff')
    atomic_write(str(tmp_path / 't.txt'), 'héllo')
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    atomic_write(str(tmp_path / 'a.npy'), lambda f: np.save(f, arr))
    assert (tmp_path / 'b.bin').read_bytes() == b'\x00\xff'
    assert (tmp_path / 't.txt').read_text(encoding='utf-8') == 'héllo'
    np.testing.assert_array_equal(np.load(tmp_path / 'a.npy'), arr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.npy', 'b.bin', 't.txt']
    atomic_write(str(tmp_path / 'f.bin'), b'x', fsync=True)
    assert (tmp_path / 'f.bin').read_bytes() == b'x'


@pytest.mark.parametrize('error', [RuntimeError, KeyboardInterrupt])
def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path, error):
    path = tmp_path / 'c.json'
    path.write_text('old')
    seen = []

    def write(f):
        f.write(b'half')
        seen.extend(p.name for p in tmp_path.iterdir())
        raise error('disk full')

    with pytest.raises(error, match='disk full'):
        atomic_write(str(path), write)
    # the content went to a temporary name with the prefix the tools clean up by and the
    # final extension; it is gone and the old file is intact
    temp = [n for n in seen if n != 'c.json']
    assert len(temp) == 1 and temp[0].startswith(TMP_PREFIX) and temp[0].endswith('.json')
    assert [p.name for p in tmp_path.iterdir()] == ['c.json']
    assert path.read_text() == 'old'


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(str(tmp_path / 'no' / 'x.bin'), b'x')


@pytest.mark.parametrize('mask,mode', [(0o022, 0o644), (0o077, 0o600)])
def test_extract_backbone_output_follows_the_umask(tmp_path, mask, mode):
    spec = importlib.util.spec_from_file_location('extract_backbone', EXTRACT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    state = OrderedDict(w=torch.arange(4.))
    out = tmp_path / 'sub' / 'backbone.pth'
    with umask(mask):
        tool.save_atomic(state, str(out))
    assert _mode(out) == mode
    assert torch.equal(torch.load(out, weights_only=True)['w'], state['w'])
    assert [p.name for p in out.parent.iterdir()] == ['backbone.pth']
