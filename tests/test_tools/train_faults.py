"""Loaded into a real ``tools/train.py`` run (``custom_imports``) by the
resume tests: it announces the phases of the run, so that a test can kill
the run inside one, and slows down or fails checkpoint writes as a slow or
a full disk would. Nothing here is part of mmdssd.

Environment:
    MMDSSD_TEST_EVENTS: file the phases are appended to, one a line:
        ``train EPOCH ITER``, ``val EPOCH ITER``, ``writing NAME``.
    MMDSSD_TEST_PAUSE: seconds to wait after each announcement, so that a
        kill sent on it lands inside that phase.
    MMDSSD_TEST_DISK: ``slow`` (checkpoints written in 20 chunks, 0.1 s
        apart) or ``full:NAME`` (the write of NAME fails halfway, ENOSPC).
"""
import errno
import os
import os.path as osp
import time

from mmengine.runner import loops

from mmdssd.fileio import TMP_MARK, atomic_local_backend

EVENTS = os.environ.get('MMDSSD_TEST_EVENTS')
PAUSE = float(os.environ.get('MMDSSD_TEST_PAUSE', '0'))
DISK = os.environ.get('MMDSSD_TEST_DISK', '')


def announce(event: str) -> None:
    if EVENTS:
        with open(EVENTS, 'a') as f:
            f.write(event + '\n')
    time.sleep(PAUSE)


def _announcing(run_iter, phase):

    def wrapped(self, idx, data_batch):
        announce(f'{phase} {self.runner.epoch} {idx}')
        return run_iter(self, idx, data_batch)

    return wrapped


loops.EpochBasedTrainLoop.run_iter = _announcing(
    loops.EpochBasedTrainLoop.run_iter, 'train')
loops.ValLoop.run_iter = _announcing(loops.ValLoop.run_iter, 'val')

_write_bytes = atomic_local_backend.write_bytes


def write_bytes(f, data: bytes) -> None:
    target = osp.basename(f.name)[1:].split(TMP_MARK)[0]
    if DISK == 'slow' and target.endswith('.pth'):
        chunk = len(data) // 20 + 1
        for start in range(0, len(data), chunk):
            f.write(data[start:start + chunk])
            f.flush()
            if start == 0:
                announce(f'writing {target}')
            time.sleep(0.1)
    elif DISK == f'full:{target}':
        f.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    else:
        _write_bytes(f, data)


atomic_local_backend.write_bytes = write_bytes
