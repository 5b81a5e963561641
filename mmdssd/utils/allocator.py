"""Keep the memory a CPU training step frees for the next step."""
import ctypes
import ctypes.util
import platform
import resource

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Make glibc's ``malloc`` keep freed blocks in the process for reuse.

    A training step allocates and frees the same activations every step.
    With glibc's defaults the largest of them are mapped and unmapped
    each time (``mmap``) and the top of the heap is handed back to the
    kernel (trimmed), so every step faults those pages in again, one 4 KiB
    page at a time, zeroed by the kernel: time that profiles show in
    ``aten::empty``. Serving every block from the heap (no ``mmap``) and
    trimming it only past ``trim_threshold`` free bytes keeps the pages
    mapped from one step to the next. The process holds on to its peak
    heap in exchange, which a training process reaches again every step
    anyway. The first steps may still fault: PyTorch's aligned allocations
    ask a few bytes more than a freed block of the same size holds, so a
    block reuses its place once the freed blocks around it have merged.

    Call it at the start of the process, before the large allocations.
    It changes only this process.

    Args:
        trim_threshold (int): Free bytes at the top of the heap before
            glibc returns any to the kernel. Defaults to 1 GiB.

    Returns:
        bool: True if applied; False where the C library is not glibc
        (nothing is changed there).
    """
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    libc = ctypes.CDLL(ctypes.util.find_library('c'))
    return (libc.mallopt(_M_MMAP_MAX, 0) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1)


def minor_page_faults() -> int:
    """Minor page faults of this process so far (pages the kernel mapped
    in without reading a disk: fresh memory touched for the first
    time)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
