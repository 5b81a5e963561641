"""Local files written so that a kill or an I/O error never leaves half a
file under the final name.

MMEngine's :class:`~mmengine.fileio.LocalBackend` opens the destination and
writes into it; a process killed in the write, or a full disk, leaves a
truncated file that looks like a checkpoint. Here every ``put`` goes to a
temporary name in the same folder, is flushed to the disk and then renamed
over the destination, which POSIX and Windows do in one step.
"""
import errno
import os
import os.path as osp
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Union

from mmengine.fileio import LocalBackend, register_backend

ATOMIC_LOCAL = 'mmdssd_atomic_local'
TMP_MARK = '.part-'

PathLike = Union[str, Path]


class CheckpointWriteError(OSError):
    """Writing a file failed; the file it would have replaced is intact."""


def _fsync_dir(folder: str) -> None:
    # the rename is durable only once the folder's entry is on the disk
    if os.name == 'nt':  # folders cannot be opened for fsync there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(f, data: bytes) -> None:
    """Write ``data`` to the open file ``f`` (the step tests slow down)."""
    f.write(data)


def _write_error(path: str, tmp: str, err: OSError) -> CheckpointWriteError:
    folder = osp.dirname(path) or '.'
    free = shutil.disk_usage(folder).free
    reason = 'the disk is full' if err.errno == errno.ENOSPC else str(err)
    return CheckpointWriteError(
        err.errno, f'{path}: could not be written ({reason}; '
        f'{free / 2**20:.1f} MiB free in {folder}); the previous file, if '
        f'any, is unchanged and the partial {osp.basename(tmp)} removed')


def atomic_write(data: Union[bytes, str], path: PathLike) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Args:
        data: Bytes, or text (written as UTF-8).
        path: The destination; its folder is created if missing.

    Raises:
        CheckpointWriteError: if writing fails (full disk, I/O error),
            naming ``path`` and the free space; ``path`` is untouched.
    """
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}{TMP_MARK}{os.getpid()}')
    if isinstance(data, str):
        data = data.encode('utf-8')
    try:
        with open(tmp, 'wb') as f:
            write_bytes(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if osp.exists(tmp):
            os.remove(tmp)
        raise _write_error(path, tmp, err) from err
    _fsync_dir(folder)


@register_backend(ATOMIC_LOCAL)
class AtomicLocalBackend(LocalBackend):
    """:class:`~mmengine.fileio.LocalBackend` whose writes are atomic, and
    whose removals can wait until the writes that replace them are done.

    Select it with ``backend_args=dict(backend='mmdssd_atomic_local')``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._deferred: List[str] = []
        self._deferring = False

    def put(self, obj: bytes, filepath: PathLike) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: PathLike,
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)

    def remove(self, filepath: PathLike) -> None:
        if self._deferring:
            self._deferred.append(str(filepath))
        else:
            super().remove(filepath)

    @contextmanager
    def removals_deferred(self) -> Iterator[None]:
        """Keep the files removed inside the block until it ends without
        an error: a kill or a failed write inside leaves them in place."""
        self._deferring, self._deferred = True, []
        try:
            yield
        finally:
            self._deferring = False
            deferred, self._deferred = self._deferred, []
        for path in deferred:
            if osp.isfile(path):
                super().remove(path)
