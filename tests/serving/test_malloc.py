import subprocess
import sys

import pytest

from serving import malloc

SCRIPT = """
import resource, sys
import numpy as np
from serving import malloc
if sys.argv[1] == "tuned":
    assert malloc.tune()
counts = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(300_000, np.uint8) for _ in range(12)]  # a request's parse buffers
    del arrays
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(counts[4:]))
"""


def _faults(mode):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not malloc.available(), reason="the C library has no mallopt (not glibc)")
def test_tuned_allocator_reuses_request_sized_buffers_instead_of_refaulting_them():
    # 12 buffers of 300 KB allocated and freed per "request": with glibc's defaults the
    # arena is trimmed after each and ~850 pages are faulted in again every time
    assert _faults("default") > 8 * 500
    assert _faults("tuned") < 8 * 10


MAPS = """
import ctypes, sys
from serving import malloc
if sys.argv[1] == "tuned":
    assert malloc.tune()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
def mapped(size):
    # glibc marks a chunk it served with mmap by the IS_MMAPPED bit (0x2) of the size
    # word just before the pointer it returns.
    address = libc.malloc(size)
    header = ctypes.c_size_t.from_address(address - ctypes.sizeof(ctypes.c_size_t)).value
    libc.free(ctypes.c_void_p(address))
    return bool(header & 2)
print(mapped(31 << 20), mapped(33 << 20))
"""


@pytest.mark.skipif(not malloc.available(), reason="the C library has no mallopt (not glibc)")
def test_the_tuned_mmap_threshold_lies_between_31_and_33_mib():
    """glibc's dynamic rule never raises the threshold past 32 MiB (64-bit); seen from the
    process: a 31 MiB block comes from the heap once tuned and a 33 MiB one is still
    mapped on its own, while untuned both are mapped."""

    def run(mode):
        done = subprocess.run(
            [sys.executable, "-c", MAPS, mode], capture_output=True, text=True, check=True
        )
        return done.stdout.split()

    assert run("default") == ["True", "True"]
    assert run("tuned") == ["False", "True"]
