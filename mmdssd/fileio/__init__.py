from .atomic_local_backend import (ATOMIC_LOCAL, AtomicLocalBackend,
                                   CheckpointWriteError, TMP_MARK,
                                   atomic_write)

__all__ = [
    'ATOMIC_LOCAL', 'AtomicLocalBackend', 'CheckpointWriteError', 'TMP_MARK',
    'atomic_write'
]
