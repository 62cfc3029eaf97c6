"""glibc's allocator tuned for a server whose requests allocate megabytes and free them.

A batch-32 24x24 REST request parses into a dozen buffers of its body's size (~300 KB).
With glibc's dynamic thresholds, freeing them can push a thread's arena past its trim
threshold, which hands the memory back to the kernel, and the next request faults it in
again page by page: ~1,000 page faults, 1.5 ms of a 3.3 ms parse, measured in the
server after a few hundred batch-1 requests had shaped its arenas (none in a fresh one,
which makes it easy to miss). `tune()` fixes the mmap threshold at 32 MiB and the trim
threshold at 64 MiB, the most glibc's dynamic rule raises them to on its own, so no more
memory is kept than glibc may keep anyway; it only stops depending on request history.
TF Serving links tcmalloc for the same reason.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what the dynamic rule sets beside it


def _mallopt():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


def available():
    """Whether the C library has glibc's `mallopt`."""
    return _mallopt() is not None


def tune(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD):
    """Sets glibc's thresholds; returns `False` where the C library has no `mallopt`."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )


def trim():
    """Hands the free memory of every glibc arena back to the system (`malloc_trim(0)`):
    after a request that held hundreds of megabytes, worker threads' arenas would keep
    it otherwise. Returns `False` where the C library has no `malloc_trim`."""
    try:
        malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    return bool(malloc_trim(0))
