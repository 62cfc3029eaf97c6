"""Shift consistency: how often a model's top-1 prediction survives a random shift.

Two views of each image at independent random offsets (`tfposenc.augment.shift_views`);
the score is the percentage of images whose two top-1 predictions agree (labels are
ignored), averaged over `passes` passes over the dataset. The views follow `shift_mode`
(see `tfposenc.augment.shift` for the exact conventions): `"crop"` is Zhang's protocol
(ICML 2019) behind the poster's Cons.8 / Cons.16, two windows of a larger image with no
fill; `"symmetric"` (the default) pads `max_shift` on every side, APS's convention, and
suits inputs that cannot be cropped (the CIFAR-sized tables of this package); `"circular"`
gives circular-shift consistency (100 % by construction for APS networks).
"""

import keras
import tensorflow as tf

from tfposenc.augment.shift import check_shift_args, resolve_shift_mode, shift_views
from tfposenc.validation import check_positive_int


def _images(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def consistency_pass(
    model,
    dataset,
    max_shift=8,
    shift_mode="symmetric",
    padding_mode="zero",
    per="image",
    seed=0,
    crop_size=None,
    mode=None,
):
    """One pass over `dataset`; returns `(agreeing images, images)`.

    Both views go through the model in one call of twice the batch; the loop is one
    traced step per batch with no per-image Python work.
    """
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    generator = keras.random.SeedGenerator(seed)

    @tf.function(reduce_retracing=True)
    def step(images):
        first, second = shift_views(
            images, max_shift, shift_mode, padding_mode, per, generator, crop_size
        )
        logits = model(tf.concat([first, second], axis=0), training=False)
        top1 = tf.argmax(logits, axis=-1)
        n = tf.shape(images)[0]
        return tf.reduce_sum(tf.cast(top1[:n] == top1[n:], tf.int64)), n

    agree = total = 0
    for batch in dataset:
        a, n = step(_images(batch))
        agree += int(a)
        total += int(n)
    return agree, total


def top1_accuracy(model, dataset):
    """Top-1 accuracy in % of `model` on a dataset of `(images, labels)` batches."""

    @tf.function(reduce_retracing=True)
    def step(images, labels):
        top1 = tf.argmax(model(images, training=False), axis=-1)
        correct = tf.cast(top1 == tf.cast(tf.reshape(labels, [-1]), top1.dtype), tf.int64)
        return tf.reduce_sum(correct), tf.shape(images)[0]

    correct = total = 0
    for images, labels in dataset:
        c, n = step(images, labels)
        correct += int(c)
        total += int(n)
    return 100.0 * correct / max(total, 1)


def shift_consistency(
    model,
    dataset,
    max_shift=8,
    shift_mode="symmetric",
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
        max_shift: int >= 1; 8 and 16 give Cons.8 and Cons.16. Defaults to `8`.
        shift_mode: `"symmetric"`, `"one_sided"`, `"crop"` or `"circular"` (module
            docstring). Defaults to `"symmetric"`. `mode` is accepted as an alias.
        passes: int >= 1, passes over the dataset, each with fresh offsets. Defaults
            to `5`.
        per: `"image"` or `"batch"` (one offset pair per batch, the reference code).
            Defaults to `"image"`.
        seed: int. Defaults to `0`.
        padding_mode: the fill of `"symmetric"` / `"one_sided"` views. Defaults to
            `"zero"`.
        crop_size: `"crop"` only, the window size. Defaults to `size - max_shift + 1`.
    """
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    check_positive_int(passes, "passes")
    agree = total = 0
    for index in range(passes):
        a, t = consistency_pass(
            model, dataset, max_shift, shift_mode, padding_mode, per, seed + index, crop_size
        )
        agree += a
        total += t
    return {
        "consistency": 100.0 * agree / max(total, 1),
        "accuracy": top1_accuracy(model, dataset),
    }
