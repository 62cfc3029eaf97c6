"""Shift consistency: how often a model's top-1 prediction survives a random shift.

Two views of each image at independent random offsets (`tfposenc.augment.shift_views`);
the score is the percentage of images whose two top-1 predictions agree (labels are
ignored), averaged over `passes` passes over the dataset. The views follow `shift_mode`
(see `tfposenc.augment.shift` for the exact conventions): `"centred"` (the default) is
the poster's Cons.m, Zhang's protocol on an image with a fill band around it: the two
views differ by at most `m - 1` pixels per axis, at offsets centred on the image; `"crop"`
is Zhang's ImageNet protocol, two windows of a larger image with no fill; `"symmetric"`
pads `max_shift` on every side (APS's convention: views differ by up to `2 m`);
`"circular"` gives circular-shift consistency (100 % by construction for APS networks).
The model runs through its one traced inference function (`tfposenc.metrics.traced`);
the views are cut eagerly, so any number of shift sizes costs no retracing.
"""

import numpy as np

from tfposenc.augment.shift import check_shift_args, resolve_shift_mode, shift_views
from tfposenc.metrics.traced import traced
from tfposenc.validation import check_positive_int


def _images(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def consistency_pass(
    model,
    dataset,
    max_shift=8,
    shift_mode="centred",
    padding_mode="zero",
    per="image",
    seed=0,
    crop_size=None,
    mode=None,
):
    """One pass over `dataset`; returns `(agreeing images, images)`.

    Both views go through the model in one call of twice the batch (one traced
    function for every call, no per-image Python work).
    """
    import keras
    import tensorflow as tf

    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    generator = keras.random.SeedGenerator(seed)
    predict = traced(model)
    agree = total = 0
    for batch in dataset:
        images = tf.convert_to_tensor(_images(batch))
        first, second = shift_views(
            images, max_shift, shift_mode, padding_mode, per, generator, crop_size
        )
        top1 = np.argmax(np.asarray(predict(tf.concat([first, second], axis=0))), axis=-1)
        n = len(top1) // 2
        agree += int(np.sum(top1[:n] == top1[n:]))
        total += n
    return agree, total


def shift_agreement(
    model,
    dataset,
    max_shift=8,
    shift_mode="centred",
    passes=5,
    per="image",
    seed=0,
    padding_mode="zero",
    crop_size=None,
):
    """Cons.`max_shift` in %: top-1 agreement of two views over `passes` passes, each
    with fresh offsets (pass `i` is seeded `seed + i`, so every model sees the same views).
    The arguments are `shift_consistency`'s."""
    check_positive_int(passes, "passes")
    agree = total = 0
    for index in range(passes):
        a, t = consistency_pass(
            model, dataset, max_shift, shift_mode, padding_mode, per, seed + index, crop_size
        )
        agree += a
        total += t
    return 100.0 * agree / max(total, 1)


def top1_accuracy(model, dataset):
    """Top-1 accuracy in % of `model` on a dataset of `(images, labels)` batches."""
    predict = traced(model)
    correct = total = 0
    for images, labels in dataset:
        top1 = np.argmax(np.asarray(predict(images)), axis=-1)
        correct += int(np.sum(top1 == np.reshape(np.asarray(labels), [-1])))
        total += len(top1)
    return 100.0 * correct / max(total, 1)


def shift_consistency(
    model,
    dataset,
    max_shift=8,
    shift_mode="centred",
    passes=5,
    per="image",
    seed=0,
    padding_mode="zero",
    crop_size=None,
    mode=None,
):
    """Returns `{"consistency": %, "accuracy": %}` of `model` on `dataset`.

    Args:
        model: a callable from images `[B, H, W, C]` to logits.
        dataset: iterable of `(images, labels)` batches (labels only feed `accuracy`,
            the top-1 accuracy on the unshifted images).
        max_shift: int >= 1; `m` of Cons.m. With the default `shift_mode`, 8 and 16 give
            the poster's Cons.8 and Cons.16. Defaults to `8`.
        shift_mode: `"centred"` (views differ by at most `m - 1` px per axis, fill around
            the image), `"crop"` (at most `m - 1`, no fill: feed larger images),
            `"one_sided"` (at most `m - 1`, fill top-left only), `"symmetric"` (up to
            `2 m`) or `"circular"` (rolls by offsets in `[0, m)`). Defaults to
            `"centred"`. `mode` is accepted as an alias.
        passes: int >= 1, passes over the dataset, each with fresh offsets. Defaults
            to `5`.
        per: `"image"` or `"batch"` (one offset pair per batch, the reference code).
            Defaults to `"image"`.
        seed: int. Defaults to `0`.
        padding_mode: the fill of `"centred"`, `"symmetric"` and `"one_sided"` views.
            Defaults to `"zero"`.
        crop_size: `"crop"` only, the window size. Defaults to `size - max_shift + 1`.
    """
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    consistency = shift_agreement(
        model, dataset, max_shift, shift_mode, passes, per, seed, padding_mode, crop_size
    )
    return {"consistency": consistency, "accuracy": top1_accuracy(model, dataset)}
