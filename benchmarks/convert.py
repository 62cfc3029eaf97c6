"""Inference speed of a converted keras.applications ResNet50, and the conversion's cost.

    python -m benchmarks.convert [--size 64 --batch 8 --rounds 5]

One run builds `keras.applications.ResNet50(weights=None)` at `--size` px, converts it
with `tfposenc.convert.convert_model` to zero/stride (a copy), circular/blur and
circular/aps, and times a compiled inference call (`tf.function`, no XLA) of each,
interleaved in rounds in one process, as images per second. It also reports the
conversion's wall time and the growth of the process' resident memory during it,
against the model's weight bytes (the target: under 10 s and at most twice the
weights).

Measured (2-core shared CPU, load ~2.4, 64 px, batch 8): original 86.8 images/s,
zero/stride 87.4 (1.01x), circular/blur 68.6 (0.79x), circular/aps 57.7 (0.66x);
conversion 0.5-0.7 s, resident memory +0.32x the weights (90 MiB) for the first.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import interleaved, report  # noqa: E402
from tfposenc.convert import convert_model  # noqa: E402

VARIANTS = (("zero", "stride"), ("circular", "blur"), ("circular", "aps"))


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convert")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(
        weights=None, include_top=False, pooling="avg", input_shape=(args.size, args.size, 3)
    )
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    models, costs = {"original": model}, []
    for mode, down in VARIANTS:
        before, start = resident_bytes(), time.perf_counter()
        converted, changes = convert_model(model, mode, down)
        seconds = time.perf_counter() - start
        grown = resident_bytes() - before
        models[f"{mode}/{down}"] = converted
        costs.append(
            (
                f"convert {mode}/{down}",
                f"{seconds:.2f} s",
                f"RSS +{grown / weight_bytes:.2f}x weights",
                f"{len(changes)} changes",
            )
        )
    x = tf.constant(
        np.random.default_rng(0).uniform(0, 255, (args.batch, args.size, args.size, 3)), tf.float32
    )
    calls = {}
    for name, m in models.items():
        calls[name] = (lambda fn: lambda: fn(x).numpy())(
            tf.function(lambda t, m=m: m(t, training=False), jit_compile=False)
        )
    seconds = interleaved(calls, rounds=args.rounds, warmup=2, repeats=args.repeats)
    base = seconds["original"]
    rows = [
        (name, f"{args.batch / s:.1f} images/s", f"{base / s:.2f}x original")
        for name, s in seconds.items()
    ]
    title = (
        f"keras.applications.ResNet50 inference, {args.size}x{args.size}, batch {args.batch}, "
        f"{args.rounds} interleaved rounds (weights {weight_bytes / 2**20:.0f} MiB)"
    )
    report(title, rows + costs, args.json)


if __name__ == "__main__":
    main()
