"""Every keras.applications family through `convert_model`, one outcome per option.

    python -m tests.convert.sweep [FAMILY ...]     # prints the README's conversion table

Each family is its smallest member, `weights=None`, no top, average pooled, at the
smallest input it accepts that its total stride (32) divides. The options are the
conversions the README names; `check` returns `("converts", detail)` or `("refused",
the ValueError's message)` and raises on anything else (another exception, a
conversion that is not exact, an APS model whose pooled features move under a roll).
"""

import functools
import re
import sys
import time

import keras
import numpy as np

from tfposenc.convert import convert_model

# family -> (smallest member, smallest input size divisible by the total stride 32)
FAMILIES = {
    "ConvNeXt": ("ConvNeXtTiny", 32),
    "DenseNet": ("DenseNet121", 32),
    "EfficientNet": ("EfficientNetB0", 32),
    "EfficientNetV2": ("EfficientNetV2B0", 32),
    "InceptionResNetV2": ("InceptionResNetV2", 96),  # accepts 75 px and up
    "InceptionV3": ("InceptionV3", 96),  # accepts 75 px and up
    "MobileNet": ("MobileNet", 32),
    "MobileNetV2": ("MobileNetV2", 32),
    "MobileNetV3": ("MobileNetV3Small", 32),
    "NASNet": ("NASNetMobile", 32),
    "ResNet": ("ResNet50", 32),
    "ResNetV2": ("ResNet50V2", 32),
    "VGG": ("VGG16", 32),
    "Xception": ("Xception", 96),  # accepts 71 px and up
}
# option -> (padding_mode, downsampling)
OPTIONS = {
    "circular": ("circular", "stride"),
    "reflect": ("reflect", "stride"),
    "blur": ("zero", "blur"),
    "circular + APS": ("circular", "aps"),
}
# What the sweep finds at those sizes: option -> the outcome and, for a refusal, a
# pattern of its reason. A map too small for the pad refuses only at the smallest size
# (`main` finds the size from which it converts).
SMALL = ("refused", "needs a larger map")
CONVERTS = ("converts", None)
ANY_SIZE = ("refused", "'valid' stride-2 window .* at any input size")
EXPECTED = {
    "ConvNeXt": (SMALL, SMALL, CONVERTS, ("refused", "stem.*subsamples by 2 only.*strides=4")),
    "DenseNet": (CONVERTS, SMALL, CONVERTS, CONVERTS),
    "EfficientNet": (SMALL, SMALL, CONVERTS, SMALL),
    "EfficientNetV2": (CONVERTS, SMALL, CONVERTS, CONVERTS),
    "InceptionResNetV2": (CONVERTS, SMALL, CONVERTS, ANY_SIZE),
    "InceptionV3": (CONVERTS, SMALL, CONVERTS, ANY_SIZE),
    "MobileNet": (CONVERTS, SMALL, CONVERTS, CONVERTS),
    "MobileNetV2": (CONVERTS, SMALL, CONVERTS, CONVERTS),
    "MobileNetV3": (SMALL, SMALL, CONVERTS, SMALL),
    "NASNet": (SMALL, SMALL, CONVERTS, ANY_SIZE),
    "ResNet": (CONVERTS, SMALL, CONVERTS, CONVERTS),
    "ResNetV2": (CONVERTS, SMALL, CONVERTS, CONVERTS),
    "VGG": (CONVERTS, CONVERTS, CONVERTS, CONVERTS),
    "Xception": (CONVERTS, CONVERTS, CONVERTS, ANY_SIZE),
}
ROLLS = ((1, 1), (7, 7))
# APS invariance: the largest change under a roll, relative to the largest feature.
TOLERANCE = 1e-4


@functools.cache
def build(family, size=None):
    name, smallest = FAMILIES[family]
    size = size or smallest
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, name)(
        weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3)
    )


def images(size, batch=2):
    return np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def run(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), "float64")


def layer_names(model):
    """The names of `model`'s layers, nested models' layers included."""
    names = set()
    for operation in getattr(model, "operations", model.layers):
        names.add(operation.name)
        if isinstance(operation, keras.Model):
            names |= layer_names(operation)
    return names


def check_exact_copy(model):
    """`convert_model(model)` computes exactly what `model` does."""
    converted, changes = convert_model(model)
    x = images(model.input.shape[1])
    gap = np.abs(run(converted, x) - run(model, x)).max()
    if changes or gap != 0.0:
        raise AssertionError(f"no-change conversion not exact: {len(changes)} changes, {gap}")
    return f"exact (max difference {gap})"


def check(model, option):
    """`("converts", detail)` or `("refused", message)` for one option (see above)."""
    padding_mode, downsampling = OPTIONS[option]
    try:
        converted, changes = convert_model(model, padding_mode, downsampling)
    except ValueError as error:
        message = str(error)
        named = re.search(r"(?:layer|operation) '([^']+)'", message)
        if named is None or named.group(1) not in layer_names(model):
            raise AssertionError(f"refusal names no layer of the model: {message}") from error
        return "refused", message
    x = images(model.input.shape[1])
    reference = run(converted, x)
    if reference.shape != tuple(model.output.shape[1:]) and reference.shape[1:] != tuple(
        model.output.shape[1:]
    ):
        raise AssertionError(f"output shape changed: {reference.shape}")
    if not np.isfinite(reference).all() or not changes:
        raise AssertionError(f"{option}: {len(changes)} changes, finite={np.isfinite(reference)}")
    if downsampling != "aps":
        return "converts", f"{len(changes)} changes"
    scale = np.abs(reference).max()
    gaps = [np.abs(run(converted, np.roll(x, r, axis=(1, 2))) - reference).max() for r in ROLLS]
    if max(gaps) > TOLERANCE * scale:
        raise AssertionError(f"not invariant: roll gaps {gaps}, feature scale {scale}")
    return "converts", f"invariant (rolls {ROLLS}: {max(gaps) / scale:.1e} of the scale)"


def short_reason(message):
    """The refusal's cause in a few words, for the README table."""
    for pattern, words in [
        ("needs a larger map", "map too small for the pad"),
        ("at any input size", "'valid' stride-2 layers"),
        ("subsamples by 2 only", "stride-4 stem"),
    ]:
        if re.search(pattern, message):
            return words
    return message


def cell(family, option, sizes=(64, 96, 128, 224)):
    """One README table cell: the outcome at the smallest size and, for a map too
    small, the first of `sizes` at which the family converts."""
    status, detail = check(build(family), option)
    if status == "converts":
        return "converts"
    if re.search(SMALL[1], detail):
        for size in sizes:
            if size > FAMILIES[family][1] and check(build(family, size), option)[0] == "converts":
                return f"from {size} px"
    return f"refused: {short_reason(detail)}"


def main(families):
    print("| family (member, smallest input) | no change | " + " | ".join(OPTIONS) + " |")
    print("|---" * (len(OPTIONS) + 2) + "|")
    for family in families or FAMILIES:
        start = time.perf_counter()
        check_exact_copy(build(family))
        cells = [cell(family, option) for option in OPTIONS]
        member, size = FAMILIES[family]
        print(f"| {family} ({member}, {size} px) | exact | " + " | ".join(cells) + " |")
        print(f"<!-- {time.perf_counter() - start:.0f} s -->", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
