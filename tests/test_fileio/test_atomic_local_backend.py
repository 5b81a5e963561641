import errno
import os

import pytest

from mmdssd.fileio import (AtomicLocalBackend, CheckpointWriteError,
                           atomic_write)
from mmdssd.fileio import atomic_local_backend


def _fail_halfway(f, data):
    f.write(data[:len(data) // 2])
    raise OSError(errno.ENOSPC, 'No space left on device')


def test_atomic_write_replaces_whole_files(tmp_path):
    path = tmp_path / 'sub' / 'a.bin'
    atomic_write(b'first', path)
    atomic_write('second', path)
    assert path.read_bytes() == b'second'
    assert os.listdir(path.parent) == ['a.bin']  # no temporary left


def test_failed_write_keeps_the_old_file_and_names_the_culprit(
        tmp_path, monkeypatch):
    path = tmp_path / 'a.pth'
    atomic_write(b'complete', path)
    monkeypatch.setattr(atomic_local_backend, 'write_bytes', _fail_halfway)
    with pytest.raises(CheckpointWriteError) as info:
        atomic_write(b'x' * 100, path)
    message = str(info.value)
    assert str(path) in message and 'the disk is full' in message
    assert 'MiB free' in message
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b'complete'
    assert os.listdir(tmp_path) == ['a.pth']


def test_removals_wait_for_the_block_and_are_dropped_on_error(tmp_path):
    backend = AtomicLocalBackend()
    old, new = tmp_path / 'old.pth', tmp_path / 'new.pth'
    old.write_bytes(b'old')
    with backend.removals_deferred():
        backend.remove(old)
        assert old.exists()
        backend.put(b'new', new)
    assert not old.exists() and new.read_bytes() == b'new'

    old.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with backend.removals_deferred():
            backend.remove(old)
            raise RuntimeError('the write of the successor failed')
    assert old.exists()
    backend.remove(old)  # outside a block: at once
    assert not old.exists()
