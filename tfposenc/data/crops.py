"""The random crop of a training pipeline: one shift distribution for every model.

A shift-invariance table compares models that must see the same translations in
training. Most models see one random crop per image, cut here in the `tf.data`
pipeline; AugShift cuts its own two crops (its views are the crops) and must get the
image uncropped, or it sees the pipeline's shift plus its own. `training_crop` crops a
dataset for the first and leaves it uncropped for the second, and refuses an AugShift
whose views would not have the pipeline's distribution: every row of a table trains on
one shift distribution.
"""

import tensorflow as tf

from tfposenc.augment.shift import apply_shift, check_shift_args, offset_range
from tfposenc.validation import check_choice

TRAINING_SHIFT_MODES = ("symmetric", "crop")


def cuts_own_crops(model):
    """Whether `model` crops its training images itself (AugShift does)."""
    return bool(getattr(model, "views_are_crops", False))


def _pair(size):
    return (size, size) if isinstance(size, int) else (None if size is None else tuple(size))


def _check_views(model, max_shift, shift_mode, padding_mode, crop_size):
    wanted = {
        "max_shift": max_shift,
        "shift_mode": shift_mode,
        "padding_mode": padding_mode,
        "crop_size": crop_size,
        "per": "image",  # the pipeline crops every image independently
    }
    if shift_mode == "crop":
        wanted.pop("padding_mode")  # windows of the image: no fill
    for name, value in wanted.items():
        got = getattr(model, name, None)
        if (_pair(got) != _pair(value)) if name == "crop_size" else (got != value):
            raise ValueError(
                f"{type(model).__name__} cuts its own crops and must cut them like the "
                f"pipeline: `{name}` must be {value!r}, as training_crop cuts them. "
                f"Received: {name}={got!r}"
            )


def training_crop(
    dataset,
    max_shift,
    shift_mode="symmetric",
    padding_mode="zero",
    crop_size=None,
    model=None,
    seed=None,
):
    """Returns `dataset` (of unbatched `(image, label)`) with each image randomly cropped.

    The crop of one image (`[height, width, channels]`), drawn afresh per element:

    - `"symmetric"` (the CIFAR recipe, `tf.image.random_crop` after a `max_shift`-pixel
      pad): a window of the image's own size at offsets uniform in
      `[-max_shift, max_shift]` per axis, pixels from outside filled by `padding_mode`
      (black for `"zero"`);
    - `"crop"`: a `crop_size` window of the image itself (no fill: feed images larger
      than the model's input) at offsets uniform in `[0, max_shift)` per axis, inside
      the centred `crop_size + max_shift - 1` region.

    The exact conventions are those of `tfposenc.augment.apply_shift`, which cuts it.
    For a `model` that cuts its own crops (`AugShift`: its two views are its crops) the
    dataset is returned unchanged, after checking that the model's views have this
    distribution (same `max_shift`, `shift_mode`, `padding_mode`, `crop_size`): every
    model fed through `training_crop` then trains on the same shifts.

    Args:
        dataset: a `tf.data.Dataset` of `(image, label)`, before batching.
        max_shift: int >= 1, the shift range (above).
        shift_mode: `"symmetric"` or `"crop"`. Defaults to `"symmetric"`.
        padding_mode: the fill of `"symmetric"` crops. Defaults to `"zero"`.
        crop_size: `"crop"` only: int or `(height, width)`. Defaults to
            `size - max_shift + 1`.
        model: the model the pipeline feeds, or None (crop). Defaults to `None`.
        seed: int or None. With a seed the offsets are a function of the seed and the
            element's position in `dataset` (stateless, reproducible under parallel
            maps, given a deterministic order before it: shuffle with a seed). Defaults
            to `None` (fresh random offsets).

    Example:

    >>> train = training_crop(source.shuffle(4096, seed=0).repeat(), 4, model=model)
    """
    check_choice(shift_mode, TRAINING_SHIFT_MODES, "shift_mode")
    check_shift_args(max_shift, shift_mode, padding_mode)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
    if model is not None and cuts_own_crops(model):
        _check_views(model, max_shift, shift_mode, padding_mode, crop_size)
        return dataset
    low, high = offset_range(max_shift, shift_mode)

    def cut(image, offsets):
        return apply_shift(image[None], offsets, max_shift, shift_mode, padding_mode, crop_size)[0]

    if seed is None:

        def crop(image, label):
            return cut(image, tf.random.uniform((1, 2), low, high + 1, dtype=tf.int32)), label

        return dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)

    def seeded_crop(index, element):
        image, label = element
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])
        offsets = tf.random.stateless_uniform((1, 2), key, low, high + 1, dtype=tf.int32)
        return cut(image, offsets), label

    return dataset.enumerate().map(seeded_crop, num_parallel_calls=tf.data.AUTOTUNE)


__all__ = ["TRAINING_SHIFT_MODES", "cuts_own_crops", "training_crop"]
