"""Multi-worker benchmark: steps/s with 1 and 2 loopback workers, and gradient bytes.

    python benchmarks/multiworker.py [--steps 30] [--width 16] [--batch 32]

Trains a GAPNet on a ResNet-18 (`--width`, 32x32 inputs) with the multi-worker training loop
(`trainers.framework.multiworker.loop`) under `trainers.launch`, once with 1 worker and once with 2 (same global batch),
timing the steps after the first (tracing) epoch. On one machine both workers share its
cores, so 2 workers are not faster: the difference per step is the all-reduce (ring
over loopback) plus the contention. Then prints the bytes each step all-reduces for
ResNet-18 width 64 (every trainable weight's gradient, float32), from which a real
network's cost per step is bytes / bandwidth (ring: ~2 (N-1)/N x bytes per worker).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(args):
    import keras
    import numpy as np
    import tensorflow as tf

    from tfposenc.models import GAPNet, build_backbone
    from trainers.framework.multiworker import loop

    strategy, task = loop.make_strategy("ring")
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(0, 255, (args.batch * 4, 32, 32, 3))
    labels = np.arange(len(images)) % 10
    train = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels))
    train = train.repeat().batch(args.batch, drop_remainder=True).prefetch(2)
    with strategy.scope():
        backbone = build_backbone(
            "resnet18", stem="cifar", width=args.width, input_shape=(32, 32, 3)
        )
        model = GAPNet(backbone, 10)
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    with tempfile.TemporaryDirectory() as scratch:
        loop.fit_multi_worker(
            model, strategy, task, train, 1, scratch, steps_per_epoch=3, verbose=0
        )  # warm-up: tracing
        loop.fit_multi_worker(
            model, strategy, task, train, 1, scratch + "/b", steps_per_epoch=args.steps,
            callbacks=[clock], verbose=0,
        )  # fmt: skip
    if task.is_chief:
        print("RESULT", json.dumps({"steps_per_second": args.steps / clock.seconds}), flush=True)


def gradient_bytes(width=64):
    from tfposenc.models import GAPNet, build_backbone

    backbone = build_backbone("resnet18", stem="cifar", width=width, input_shape=(32, 32, 3))
    model = GAPNet(backbone, 10)
    weights = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    return weights, 4 * weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="multi_worker", help=argparse.SUPPRESS)  # launch
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    rows = {}
    for workers in (1, 2):
        command = [sys.executable, "-m", "trainers.launch", "--workers", str(workers), "--",
                   "benchmarks.multiworker", "--worker", "--steps", str(args.steps),
                   "--width", str(args.width), "--batch", str(args.batch)]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if "RESULT" in x), None)
        if done.returncode or line is None:
            raise SystemExit(done.stdout[-3000:])
        rows[workers] = json.loads(line.split("RESULT", 1)[1])["steps_per_second"]
    print(f"ResNet-18 width {args.width}, 32x32, global batch {args.batch}, {os.cpu_count()} cores")
    print("| workers | steps/s | ms/step |")
    print("|---|---|---|")
    for workers, rate in rows.items():
        print(f"| {workers} | {rate:.2f} | {1000 / rate:.0f} |")
    print(f"2-worker overhead per step: {1000 / rows[2] - 1000 / rows[1]:.0f} ms")
    count, size = gradient_bytes(64)
    print(f"ResNet-18 width 64: {count:,} trainable weights, {size / 2**20:.1f} MiB of float32 "
          "gradients all-reduced per step")  # fmt: skip


if __name__ == "__main__":
    main()
