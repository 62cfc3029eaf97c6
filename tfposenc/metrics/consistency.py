"""Shift consistency: how often a model's top-1 prediction survives a random shift.

The protocol of Zhang (ICML 2019) that the poster reports as Cons.8 / Cons.16: two views
of each image at independent random offsets in `[0, max_shift)` per axis; the score is
the percentage of images whose two top-1 predictions agree (labels are ignored),
averaged over `passes` passes over the dataset.
"""

import keras
import tensorflow as tf

from tfposenc.metrics.shift import check_shift_args, shift_views


def _images(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def consistency_pass(model, dataset, max_shift=8, mode="crop", padding="zero", per="image", seed=0):
    """One pass over `dataset`; returns `(agreeing images, images)`.

    Both views go through the model in one call of twice the batch.
    """
    check_shift_args(max_shift, mode, padding, per)
    generator = keras.random.SeedGenerator(seed)

    @tf.function(reduce_retracing=True)
    def step(images):
        first, second = shift_views(images, max_shift, mode, padding, per, seed=generator)
        logits = model(tf.concat([first, second], axis=0), training=False)
        top1 = tf.argmax(logits, axis=-1)
        n = tf.shape(images)[0]
        return tf.reduce_sum(tf.cast(top1[:n] == top1[n:], tf.int64))

    agree = total = 0
    for batch in dataset:
        images = _images(batch)
        agree += int(step(images))
        total += int(images.shape[0])
    return agree, total


def top1_accuracy(model, dataset):
    """Top-1 accuracy in % of `model` on a dataset of `(images, labels)` batches."""

    @tf.function(reduce_retracing=True)
    def step(images, labels):
        top1 = tf.argmax(model(images, training=False), axis=-1)
        return tf.reduce_sum(
            tf.cast(top1 == tf.cast(tf.reshape(labels, [-1]), top1.dtype), tf.int64)
        )

    correct = total = 0
    for images, labels in dataset:
        correct += int(step(images, labels))
        total += int(images.shape[0])
    return 100.0 * correct / max(total, 1)


def shift_consistency(
    model, dataset, max_shift=8, mode="crop", passes=5, per="image", seed=0, padding="zero"
):
    """Returns `{"consistency": %, "accuracy": %}` of `model` on `dataset`.

    Args:
        model: a callable from float images `[B, H, W, C]` to logits.
        dataset: iterable of `(images, labels)` batches (labels only feed `accuracy`,
            the top-1 accuracy on the unshifted images).
        max_shift: int >= 1, offsets per axis drawn in `[0, max_shift)`; 8 and 16 are
            Cons.8 and Cons.16. Defaults to `8`.
        mode: `"crop"` (linear shift with `padding`) or `"circular"`. Defaults to
            `"crop"`.
        passes: int >= 1, passes over the dataset, each with fresh offsets. Defaults
            to `5`.
        per: `"image"` or `"batch"` (one offset pair per batch, the reference code).
            Defaults to `"image"`.
        seed: int. Defaults to `0`.
        padding: border mode of the crop padding. Defaults to `"zero"`.
    """
    check_shift_args(max_shift, mode, padding, per)
    if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
        raise ValueError(f"`passes` must be a positive int. Received: passes={passes!r}")
    agree = total = 0
    for index in range(passes):
        a, t = consistency_pass(model, dataset, max_shift, mode, padding, per, seed + index)
        agree += a
        total += t
    return {
        "consistency": 100.0 * agree / max(total, 1),
        "accuracy": top1_accuracy(model, dataset),
    }
