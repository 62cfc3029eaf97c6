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

The offsets depend on `seed` (and the batching) alone, never on the model: models
scored with the same dataset and seed see the same views. `per_image_agreement`
returns the per-image outcomes (`[passes, images]`) for paired comparisons between
models, and `view_offsets` the offsets themselves.
"""

import numpy as np

from tfposenc.augment.shift import apply_shift, check_shift_args, resolve_shift_mode, sample_offsets
from tfposenc.metrics.accuracy import top1_hits
from tfposenc.metrics.traced import traced
from tfposenc.validation import check_positive_int


def _images(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _pass(model, dataset, max_shift, shift_mode, padding_mode, per, seed, crop_size):
    """Yields `(agreement bool [B] or None, offsets int32 [B, 2 views, 2])` per batch.

    The offsets come from `seed` alone (the first view's, then the second's, per
    batch), never from the model: every model given the same dataset and seed sees
    the same views.
    """
    import keras
    import tensorflow as tf

    generator = keras.random.SeedGenerator(seed)
    predict = None if model is None else traced(model)
    for batch in dataset:
        images = tf.convert_to_tensor(_images(batch))
        offsets = [
            sample_offsets(int(images.shape[0]), max_shift, per, generator, shift_mode)
            for _ in range(2)
        ]
        pair = np.stack([np.asarray(o) for o in offsets], axis=1)
        if predict is None:
            yield None, pair
            continue
        first, second = (
            apply_shift(images, o, max_shift, shift_mode, padding_mode, crop_size) for o in offsets
        )
        top1 = np.argmax(np.asarray(predict(tf.concat([first, second], axis=0))), axis=-1)
        n = len(top1) // 2
        yield top1[:n] == top1[n:], pair


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
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    agree = total = 0
    for same, _ in _pass(model, dataset, max_shift, shift_mode, padding_mode, per, seed, crop_size):
        agree += int(np.sum(same))
        total += len(same)
    return agree, total


def per_image_agreement(
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
    """Whether each image's two views get the same top-1 class, per pass.

    Returns a bool array `[passes, images]` (images in dataset order). Pass `i` is
    seeded `seed + i` and its offsets depend on the seed and the batch sizes only, so
    models evaluated with the same dataset and `seed` see the same views
    (`view_offsets` returns them) and their arrays can be compared image by image (a
    paired comparison). The arguments are `shift_consistency`'s;
    `100 * per_image_agreement(...).mean()` is `shift_agreement(...)`.
    """
    check_positive_int(passes, "passes")
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    args = (max_shift, shift_mode, padding_mode, per)
    return _per_pass(model, dataset, args, passes, seed, crop_size, part=0)


def view_offsets(dataset, max_shift=8, shift_mode="centred", passes=5, per="image", seed=0):
    """The offsets of every image's two views: int32 `[passes, images, 2 views, (dy, dx)]`.

    What `per_image_agreement` and `shift_agreement` give every model with the same
    dataset (batching included), `max_shift`, `shift_mode`, `passes`, `per` and `seed`.
    """
    check_positive_int(passes, "passes")
    check_shift_args(max_shift, shift_mode, per=per)
    args = (max_shift, shift_mode, "zero", per)
    return _per_pass(None, dataset, args, passes, seed, None, part=1)


def _per_pass(model, dataset, args, passes, seed, crop_size, part):
    """`[passes, images, ...]`: part 0 (agreement) or 1 (offsets) of every image's
    outcome, pass `i` seeded `seed + i`."""
    rows = []
    for index in range(passes):
        found = _pass(model, dataset, *args, seed + index, crop_size)
        rows.append(np.concatenate([outcome[part] for outcome in found]))
    return np.stack(rows)


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
    agreement = per_image_agreement(
        model, dataset, max_shift, shift_mode, passes, per, seed, padding_mode, crop_size
    )
    return 100.0 * float(agreement.sum()) / max(agreement.size, 1)


def top1_accuracy(model, dataset):
    """Top-1 accuracy in % of `model` on a dataset of `(images, labels)` batches."""
    predict = traced(model)
    correct = total = 0
    for images, labels in dataset:
        hits = top1_hits(predict(images), labels)
        correct += int(np.sum(hits))
        total += hits.size
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
        crop_size: `"crop"` only, the window size (the model's input). Defaults to
            `size - max_shift + 1`; smaller windows lie in the centred
            `crop_size + max_shift - 1` region of the image, for every `max_shift`.
    """
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    consistency = shift_agreement(
        model, dataset, max_shift, shift_mode, passes, per, seed, padding_mode, crop_size
    )
    return {"consistency": consistency, "accuracy": top1_accuracy(model, dataset)}
