"""keep_freed_memory: a freed block is reused, not faulted in again."""
import platform
import subprocess
import sys

import pytest

from ..conftest import ROOT

# allocates and frees 64 MiB five times; prints the page faults of each
CHILD = '''
import sys
import torch
from mmdssd.utils.allocator import keep_freed_memory, minor_page_faults
applied = keep_freed_memory() if sys.argv[1] == 'kept' else None
faults = []
for _ in range(5):
    before = minor_page_faults()
    block = torch.ones(16 << 20)
    del block
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
    assert min(default[1:]) > 0, default
    applied, kept = faults_of('kept')
    assert applied == 'True'
    assert min(kept[1:]) == 0, kept
