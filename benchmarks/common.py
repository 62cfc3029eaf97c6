"""Timing helpers shared by the benchmarks: warm up, then the median of repeats."""

import json
import statistics
import time


def time_call(fn, warmup=3, repeats=20):
    """Median seconds of `fn()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved(fns, rounds=5, warmup=3, repeats=10):
    """Times several callables in alternating rounds (fair on a noisy, shared machine).

    Returns `{name: median seconds}` over all rounds.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title, rows, path=None):
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    for row in rows:
        print(f"  {row[0]:<{width}}  " + "  ".join(str(v) for v in row[1:]))
    if path:
        with open(path, "w") as f:
            json.dump({"title": title, "rows": rows}, f, indent=2)
