"""Training images/s of tfposenc models against the same architecture in PyTorch.

    pip install -e ".[bench]"   # torch==2.13.0, CPU build, from this machine's disk
    python -m benchmarks.train_throughput [--steps 5]

Rows: ResNet-18 (cifar stem, 32x32, batch 128) in float32 and mixed_bfloat16, and the
paper's GAPNet (ResNet-18 paper stem, 96x96 canvases, 9 outputs), each with Adam; PyTorch
rows run the same architecture (torchvision-style BasicBlock ResNet-18) in the same
process, with as many threads as TensorFlow uses. Targets (issue "Backbones"): tfposenc
float32 at least as fast as PyTorch; mixed bfloat16 at least 2x float32 where the CPU
has bf16 instructions.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import report  # noqa: E402
from tfposenc.models import Classifier, GAPNet, ResNetBackbone  # noqa: E402


def keras_rate(kind, precision, batch, size, steps, jit_compile=False):
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    if kind == "resnet18":
        model = Classifier(ResNetBackbone(18, "cifar", 64), 10)
        classes = 10
    else:
        model = GAPNet(ResNetBackbone(18, "paper", 64), 9)
        classes = 9
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, size=batch)
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    keras.mixed_precision.set_global_policy("float32")
    return batch * steps / (time.perf_counter() - start)


def torch_rate(kind, batch, size, steps, threads, bfloat16=False):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.short is None else self.short(x)))

    layers = []
    if kind == "resnet18":
        layers += [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    else:
        layers += [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for i, width in enumerate((64, 128, 256, 512)):
        for b in range(2):
            layers.append(Block(cin, width, 2 if (b == 0 and i > 0) else 1))
            cin = width
    if kind == "resnet18":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)]
        classes = 10
    else:
        layers += [nn.Conv2d(512, 9, 3, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        classes = 9
    model = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, classes, (batch,))

    def step():
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--gapnet-batch", type=int, default=48)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    args = parser.parse_args(argv)
    threads = os.cpu_count() or 1
    rows = []
    cases = [("resnet18", args.batch, 32), ("gapnet", args.gapnet_batch, 96)]
    for kind, batch, size in cases:
        f32 = keras_rate(kind, "float32", batch, size, args.steps)
        bf16 = keras_rate(kind, "mixed_bfloat16", batch, size, args.steps)
        rows.append((f"tfposenc {kind} {size}x{size} float32", f"{f32:.1f} img/s"))
        rows.append(
            (
                f"tfposenc {kind} {size}x{size} mixed_bfloat16",
                f"{bf16:.1f} img/s",
                f"{bf16 / f32:.2f}x float32",
            )
        )
        if args.xla:
            xla = keras_rate(kind, "float32", batch, size, args.steps, jit_compile=True)
            rows.append(
                (
                    f"tfposenc {kind} {size}x{size} float32 XLA",
                    f"{xla:.1f} img/s",
                    f"{xla / f32:.2f}x plain",
                )
            )
        if not args.skip_torch:
            try:
                t32 = torch_rate(kind, batch, size, args.steps, threads)
                tbf = torch_rate(kind, batch, size, args.steps, threads, bfloat16=True)
            except ImportError:
                rows.append(("pytorch", "not installed: pip install -e '.[bench]'"))
                continue
            rows.append(
                (
                    f"pytorch {kind} {size}x{size} float32",
                    f"{t32:.1f} img/s",
                    f"tfposenc/pytorch {f32 / t32:.2f}x",
                )
            )
            rows.append((f"pytorch {kind} {size}x{size} bf16 autocast", f"{tbf:.1f} img/s"))
    report(
        f"Training throughput, batch {args.batch} (GAPNet batch {args.gapnet_batch}), {threads} threads",
        rows,
    )


if __name__ == "__main__":
    main()
