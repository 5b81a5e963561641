"""keep_freed_memory: a freed block is reused, not faulted in again."""
import platform
import subprocess
import sys

import pytest

from ..conftest import ROOT

# mallocs, touches and frees 64 MiB five times through glibc itself and
# prints the page faults of each. (Through torch the reuse depends on the
# heap's layout: its aligned allocation asks a few bytes more than a freed
# block of the same size holds, so a block reuses its place only once the
# freed blocks around it merge, a few steps into training.)
CHILD = '''
import ctypes
import ctypes.util
import sys
from mmdssd.utils.allocator import keep_freed_memory, minor_page_faults
libc = ctypes.CDLL(ctypes.util.find_library('c'))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
applied = keep_freed_memory() if sys.argv[1] == 'kept' else None
faults = []
for _ in range(5):
    before = minor_page_faults()
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(block)
    faults.append(minor_page_faults() - before)
print(applied, *faults)
'''


def faults_of(setting):
    out = subprocess.run([sys.executable, '-c', CHILD, setting], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    applied, *faults = out.split()
    return applied, [int(f) for f in faults]


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_kept_memory_is_reused_without_page_faults():
    applied, default = faults_of('default')
    assert applied == 'None'
    # glibc's default maps a block this large afresh every time
    assert min(default) >= 16384, default  # every 4 KiB page, every time
    applied, kept = faults_of('kept')
    assert applied == 'True'
    assert kept[0] > 0 and max(kept[1:]) == 0, kept  # faulted in once
