"""Grid-canvas pipeline throughput, and the cost of a shift-consistency pass.

    python -m benchmarks.pipeline

Targets (issue "Data"): at least 2,000 canvases/s for CIFAR-sized images on 3x3 grids
(96x96 canvases) on 2 cores; one consistency pass at most 2.2x one plain evaluation
pass of the same model. CIFAR cannot be downloaded here, so the source is 10,000 random
uint8 32x32 images fed through the same `load`-shaped dataset (`(uint8, int64)`, cached).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import report  # noqa: E402
from tfposenc.data import info, make_grid  # noqa: E402
from tfposenc.metrics import consistency_pass, top1_accuracy  # noqa: E402
from tfposenc.models import Classifier, ResNetBackbone  # noqa: E402


def canvases_per_second(grid_size, batch, seconds, flip=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10_000, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=10_000).astype("int64")
    source = tf.data.Dataset.from_tensor_slices((images, labels)).cache().repeat()
    meta = info("cifar10")
    grid = make_grid(source, grid_size, mean=meta.mean, flip=flip, seed=0)
    iterator = iter(grid.batch(batch).prefetch(tf.data.AUTOTUNE))
    for _ in range(5):
        next(iterator)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += int(next(iterator)[0].shape[0])
    return count / (time.perf_counter() - start)


def consistency_ratio(width, batch, n):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=n)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    model = Classifier(ResNetBackbone(18, "cifar", width), 10)
    top1_accuracy(model, ds)  # trace both once
    consistency_pass(model, ds, max_shift=8)
    plain, cons = [], []
    for _ in range(3):  # interleaved rounds
        start = time.perf_counter()
        top1_accuracy(model, ds)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        consistency_pass(model, ds, max_shift=8)
        cons.append(time.perf_counter() - start)
    return float(np.median(plain)), float(np.median(cons))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--eval-images", type=int, default=1024)
    args = parser.parse_args(argv)
    rows = []
    for k in (3, 5, 7):
        rate = canvases_per_second(k, args.batch, args.seconds)
        rows.append((f"grid {k}x{k} ({32 * k}x{32 * k} canvases)", f"{rate:,.0f} canvases/s"))
    report("Grid pipeline (CIFAR-sized, flip, paste on the mean colour, batch 128)", rows)
    plain, cons = consistency_ratio(args.width, args.batch, args.eval_images)
    report(
        f"Consistency pass vs plain evaluation (ResNet-18 cifar stem width {args.width}, "
        f"{args.eval_images} 32x32 images, batch {args.batch})",
        [
            ("plain evaluation pass", f"{plain:.2f} s"),
            ("consistency pass (2 views)", f"{cons:.2f} s", f"{cons / plain:.2f}x plain"),
        ],
    )


if __name__ == "__main__":
    main()
