"""Forward+backward time of each padding mode, and PaddedConv2D against Keras Conv2D.

    python -m benchmarks.padding [--batch 32 --size 56 --channels 64]

Targets (issue "Package foundation"): replicate and circular at most 1.5x reflect; a
zero-mode PaddedConv2D training step at most 1.1x `Conv2D(padding="same")`. All timings
of one table come from interleaved rounds in the same process.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import interleaved, report  # noqa: E402
from tfposenc.layers import PADDING_MODES, PaddedConv2D, Padding2D  # noqa: E402


def forward_backward(layer, x):
    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    return lambda: [g.numpy() for g in step()][:0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the table here")
    args = parser.parse_args(argv)
    x = tf.random.normal((args.batch, args.size, args.size, args.channels))

    pads = {mode: forward_backward(Padding2D(1, mode), x) for mode in PADDING_MODES}
    pad_times = interleaved(pads, rounds=args.rounds)
    rows = [
        (mode, f"{1000 * t:.2f} ms", f"{t / pad_times['reflect']:.2f}x reflect")
        for mode, t in pad_times.items()
    ]
    report(f"Padding2D(1) forward+backward on {tuple(x.shape)}", rows)

    keras.utils.set_random_seed(0)
    convs = {
        "Conv2D(padding='same')": keras.layers.Conv2D(args.channels, 3, padding="same"),
        "PaddedConv2D(zero)": PaddedConv2D(args.channels, 3, padding_mode="zero"),
        "PaddedConv2D(reflect)": PaddedConv2D(args.channels, 3, padding_mode="reflect"),
        "PaddedConv2D(replicate)": PaddedConv2D(args.channels, 3, padding_mode="replicate"),
        "PaddedConv2D(circular)": PaddedConv2D(args.channels, 3, padding_mode="circular"),
        "PaddedConv2D(partial)": PaddedConv2D(args.channels, 3, padding_mode="partial"),
        "Conv2D stride 2 'same'": keras.layers.Conv2D(args.channels, 3, strides=2, padding="same"),
        "PaddedConv2D(zero) stride 2": PaddedConv2D(args.channels, 3, strides=2),
    }
    conv_times = interleaved(
        {k: forward_backward(v, x) for k, v in convs.items()}, rounds=args.rounds
    )
    base = conv_times["Conv2D(padding='same')"]
    rows = [
        (name, f"{1000 * t:.2f} ms", f"{t / base:.2f}x Conv2D same")
        for name, t in conv_times.items()
    ]
    report(f"3x3 conv training step (forward+backward) on {tuple(x.shape)}", rows)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"padding": pad_times, "conv": conv_times}, f, indent=2)


if __name__ == "__main__":
    main()
