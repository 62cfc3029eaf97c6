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


def test_thresholds_are_glibcs_own_dynamic_maxima():
    assert malloc.MMAP_THRESHOLD == 32 * 1024 * 1024
    assert malloc.TRIM_THRESHOLD == 2 * malloc.MMAP_THRESHOLD
