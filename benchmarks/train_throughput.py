"""Training and eval images/s of tfposenc models against PyTorch and the matmul ceiling.

    pip install -e ".[bench]"   # torch==2.13.0, CPU build, from this machine's disk
    python -m benchmarks.train_throughput --steps 4

Rows (issue 16): ResNet-18 (cifar stem, 32x32, batch 128, 10 classes) and the paper's
GAPNet (ResNet-18 paper stem, 96x96 canvases, batch 48, 9 outputs), each trained with
Adam in tfposenc float32 and mixed_bfloat16 and in PyTorch float32 and bfloat16 autocast
(the same torchvision-style BasicBlock architecture, same process, as many threads as
TensorFlow uses). Eval is the inference forward pass (`predict_on_batch`; PyTorch
`eval()` under `inference_mode`). The machine is shared and noisy, so every variant of
a row is timed in alternating rounds and the medians compared within one run.

The same run measures the matrix-multiply ceiling (a 2048^3 matmul in TensorFlow,
float32 and bfloat16) and reports each row as a fraction of it: a training image costs
3x the forward FLOPs (forward, input gradient, weight gradient), counted analytically
from the convolutions and the dense layer; float32 rows are compared with the float32
ceiling, bfloat16 rows with the bfloat16 one.

Targets (issue 16): mixed bfloat16 >= PyTorch bf16 autocast on both rows and >= 2x
tfposenc float32; float32 >= 1.2x PyTorch on both rows and >= 75% of the float32
ceiling on the ResNet-18 row. `--keras-bn` also times Keras' own batch norm
(`TFPOSENC_FUSED_BN=0`), `--conv-grad` bfloat16 with oneDNN's filter gradient on the
small maps (`TFPOSENC_MATMUL_CONV_GRAD=0`), `--xla` float32 with `jit_compile=True`.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import interleaved, report  # noqa: E402
from tfposenc.layers.batch_normalization import FUSED_ENV_VAR  # noqa: E402
from tfposenc.layers.conv_ops import MATMUL_GRAD_ENV_VAR  # noqa: E402
from tfposenc.models import Classifier, GAPNet, ResNetBackbone  # noqa: E402

WIDTHS = (64, 128, 256, 512)
ROWS = {
    # kind: (stem, image size, classes)
    "resnet18": ("cifar", 32, 10),
    "gapnet": ("paper", 96, 9),
}


def resnet18_forward_flops(kind):
    """Multiply-add FLOPs (2 per MAC) of one image's forward pass, convs and dense only."""
    stem, size, classes = ROWS[kind]
    macs = 0

    def conv(cin, cout, kernel, out_size):
        return out_size * out_size * kernel * kernel * cin * cout

    if stem == "cifar":
        macs += conv(3, 64, 3, size)
    else:
        size //= 2
        macs += conv(3, 64, 7, size)
    cin = 64
    for index, width in enumerate(WIDTHS):
        for block in range(2):
            stride = 2 if (block == 0 and index > 0) else 1
            size //= stride
            macs += conv(cin, width, 3, size) + conv(width, width, 3, size)
            if stride != 1 or cin != width:
                macs += conv(cin, width, 1, size)
            cin = width
    if stem == "cifar":
        macs += 512 * classes
    else:
        macs += conv(512, classes, 3, size)
    return 2 * macs


MATMUL_SIZE = 2048


def matmul_fn(dtype, n=MATMUL_SIZE):
    """One n^3 TensorFlow matmul in `dtype` (2 n^3 FLOPs), timed beside the models."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(n, n)), dtype=dtype)
    b = tf.constant(rng.normal(size=(n, n)), dtype=dtype)
    matmul = tf.function(lambda: tf.matmul(a, b))
    return lambda: matmul().numpy()


def keras_fns(kind, precision, batch, jit_compile=False, fused_bn=True, matmul_grad=True):
    """(train step, eval step) of a compiled tfposenc model under `precision`.

    `fused_bn=False` traces both steps with `TFPOSENC_FUSED_BN=0` (Keras' batch norm);
    `matmul_grad=False` with `TFPOSENC_MATMUL_CONV_GRAD=0` (oneDNN's bfloat16 filter
    gradient on small maps too).
    """
    stem, size, classes = ROWS[kind]
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        backbone = ResNetBackbone(18, stem, 64)
        if kind == "resnet18":
            model = Classifier(backbone, classes)
        else:
            model = GAPNet(backbone, classes)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, size, size, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, classes, size=batch))
    train, evaluate = (lambda: model.train_on_batch(x, y)), (lambda: model.predict_on_batch(x))
    switches = [
        name
        for name, on in ((FUSED_ENV_VAR, fused_bn), (MATMUL_GRAD_ENV_VAR, matmul_grad))
        if not on
    ]
    previous = {name: os.environ.get(name) for name in switches}
    os.environ.update({name: "0" for name in switches})
    try:  # the switches are read when the steps are traced
        if switches:
            train(), evaluate()
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    return train, evaluate


def torch_fns(kind, batch, threads, bfloat16=False):
    """(train step, eval step) of the same ResNet-18 in PyTorch."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    stem, size, classes = ROWS[kind]

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

    if stem == "cifar":
        layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    else:
        layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for index, width in enumerate(WIDTHS):
        for block in range(2):
            layers.append(Block(cin, width, 2 if (block == 0 and index > 0) else 1))
            cin = width
    if stem == "cifar":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    else:
        layers += [nn.Conv2d(512, classes, 3, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    model = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, classes, (batch,))

    def train():
        model.train()
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    def evaluate():
        model.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            return model(x)

    return train, evaluate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed train steps per variant")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--gapnet-batch", type=int, default=48)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    parser.add_argument(
        "--keras-bn", action="store_true", help="also time Keras' own batch norm (not fused)"
    )
    parser.add_argument(
        "--conv-grad",
        action="store_true",
        help="also time mixed_bfloat16 with oneDNN's filter gradient on small maps "
        "(TFPOSENC_MATMUL_CONV_GRAD=0)",
    )
    parser.add_argument("--json", help="also write the table to this JSON file")
    args = parser.parse_args(argv)
    threads = max(1, tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1)
    matmuls = {dtype: matmul_fn(dtype) for dtype in ("float32", "bfloat16")}
    rows = []
    repeats = max(1, args.steps // args.rounds)
    for kind in args.rows:
        batch = args.batch if kind == "resnet18" else args.gapnet_batch
        size = ROWS[kind][1]
        variants = {
            "tfposenc float32": ("float32", keras_fns(kind, "float32", batch)),
            "tfposenc mixed_bfloat16": ("bfloat16", keras_fns(kind, "mixed_bfloat16", batch)),
        }
        if args.xla:
            variants["tfposenc float32 XLA"] = (
                "float32",
                keras_fns(kind, "float32", batch, jit_compile=True),
            )
        if args.keras_bn:
            for precision, dtype in (("float32", "float32"), ("mixed_bfloat16", "bfloat16")):
                variants[f"tfposenc {precision} keras-bn"] = (
                    dtype,
                    keras_fns(kind, precision, batch, fused_bn=False),
                )
        if args.conv_grad:
            variants["tfposenc mixed_bfloat16 conv-grad"] = (
                "bfloat16",
                keras_fns(kind, "mixed_bfloat16", batch, matmul_grad=False),
            )
        if not args.skip_torch:
            try:
                variants["pytorch float32"] = ("float32", torch_fns(kind, batch, threads))
                variants["pytorch bf16 autocast"] = (
                    "bfloat16",
                    torch_fns(kind, batch, threads, bfloat16=True),
                )
            except ImportError:
                rows.append(("pytorch", "not installed: pip install -e '.[bench]'"))
        # The ceiling is sampled in the same rounds as the models (the load changes).
        fns = {f"matmul {dtype}": fn for dtype, fn in matmuls.items()}
        for name, (_, (train, evaluate)) in variants.items():
            fns[f"{name} train"] = train
            fns[f"{name} eval"] = evaluate
        seconds = interleaved(fns, rounds=args.rounds, warmup=2, repeats=repeats)
        flops = resnet18_forward_flops(kind)
        rate = {name: batch / s for name, s in seconds.items()}
        title = f"{kind} {size}x{size} batch {batch}"
        ceiling = {dtype: 2 * MATMUL_SIZE**3 / seconds[f"matmul {dtype}"] for dtype in matmuls}
        for dtype, value in ceiling.items():
            rows.append((f"{title} matmul {MATMUL_SIZE}^3 {dtype}", f"{value / 1e9:.0f} GFLOP/s"))
        for name, (dtype, _) in variants.items():
            train, evaluate = rate[f"{name} train"], rate[f"{name} eval"]
            rows.append(
                (
                    f"{title} {name}",
                    f"train {train:6.1f} img/s ({3 * flops * train / ceiling[dtype]:4.0%} of {dtype} ceiling)",
                    f"eval {evaluate:7.1f} img/s ({flops * evaluate / ceiling[dtype]:4.0%})",
                )
            )
        ratios = [
            ("mixed_bfloat16 / float32", "tfposenc mixed_bfloat16", "tfposenc float32"),
            ("float32 / pytorch float32", "tfposenc float32", "pytorch float32"),
            ("mixed_bfloat16 / pytorch bf16", "tfposenc mixed_bfloat16", "pytorch bf16 autocast"),
            ("float32 fused / keras-bn", "tfposenc float32", "tfposenc float32 keras-bn"),
            (
                "mixed_bfloat16 matmul / conv filter grad",
                "tfposenc mixed_bfloat16",
                "tfposenc mixed_bfloat16 conv-grad",
            ),
            (
                "mixed_bfloat16 fused / keras-bn",
                "tfposenc mixed_bfloat16",
                "tfposenc mixed_bfloat16 keras-bn",
            ),
        ]
        for label, a, b in ratios:
            if a in variants and b in variants:
                rows.append(
                    (
                        f"{title} {label}",
                        f"train {rate[f'{a} train'] / rate[f'{b} train']:.2f}x",
                        f"eval {rate[f'{a} eval'] / rate[f'{b} eval']:.2f}x",
                    )
                )
    report(
        f"Training and eval throughput, {threads} threads, {args.rounds} rounds x "
        f"{repeats} steps per variant (medians)",
        rows,
        args.json,
    )


if __name__ == "__main__":
    main()
