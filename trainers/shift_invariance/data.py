"""The shift-invariance experiment's pipelines: every row trains on the same random crops
(`tfposenc.data.training_crop`; AugShift rows cut them as their two views) and is
measured on the same test images, held in memory.

Two kinds of data (`training_shift`):

- black-canvas sources (`digits`, `glyphs`, CIFAR): each image resized to
  `--content-size` and centred on a black `--image-size` canvas (`on_black_canvas`);
  crops after a `--crop-pad` black pad (offsets in `[-crop_pad, crop_pad]`), Cons.m
  with the poster's `"centred"` black-fill views;
- crop-mode sources (`textured_glyphs`, 48 px, glyphs on 1/f noise): windows of the
  larger image, no fill (new content enters at the edges, as on CIFAR): training crops
  are `image_size` windows at `2 * crop_pad + 1` offsets per axis (the same range as
  the pad), Cons.m compares two `image_size` windows of the 48-px test image.
"""

import hashlib

import numpy as np
import tensorflow as tf

import tfposenc.data
from tfposenc.data import centre_crop, on_black_canvas, training_crop
from trainers.framework.experiment import Data

CROP_MODE_DATASETS = ("textured_glyphs",)


def crop_mode(dataset):
    """Whether `dataset` is scored with `shift_mode="crop"` (windows, no fill)."""
    return dataset in CROP_MODE_DATASETS


def training_shift(config, dataset):
    """`(max_shift, shift_mode, crop_size)` of every row's training crops on `dataset`:
    the pipeline's crop, and AugShift's two views (the model is built from the same)."""
    if crop_mode(dataset):
        return 2 * config.crop_pad + 1, "crop", config.image_size
    return config.crop_pad, "symmetric", None


def margin(config):
    """The black margin (px) around the content on each side (0 without `content_size`)."""
    if config.content_size is None:
        return 0
    return (config.image_size - config.content_size) // 2


def _arrays(dataset):
    """`(uint8 images, int64 labels)` numpy arrays of a dataset of `(image, label)`."""
    images, labels = [], []
    for image, label in dataset.as_numpy_iterator():
        images.append(np.clip(np.round(image), 0, 255).astype("uint8"))
        labels.append(int(label))
    return np.stack(images), np.asarray(labels, "int64")


def digest(images, labels):
    """The SHA-1 of a test set's pixels and labels: equal for rows measured alike."""
    return hashlib.sha1(images.tobytes() + labels.tobytes()).hexdigest()


def pipelines(config, combination, model=None):
    """Train, validation (holdout or test) and test pipelines of one row.

    Train: the prepared images (above), shuffled with the row's seed, optional flips,
    then `training_crop` with the row's seed (a model that cuts its own views, AugShift,
    gets the uncropped images after a check that its views have the same range), so
    the offsets are the same at the same seed, run after run.

    The test set is read once into memory (uint8 arrays) and served from them, so every
    row is measured on exactly the same images in the same order. `extra` holds
    `test_digest`, `test_examples` and `views`: the images Cons.m cuts its views from
    (the test set itself; for crop-mode data the full 48-px images, the test set being
    their centred `image_size` windows).
    """
    size, seed = config.image_size, combination.seed
    max_shift, shift_mode, crop_size = training_shift(config, combination.dataset)
    windows = crop_mode(combination.dataset)
    if windows:
        train_map, test_map = centre_crop(size + max_shift - 1), centre_crop(size)
    else:
        test_map = train_map = on_black_canvas(config.content_size or size, size)

    def source(split):
        # Looked up on the module at each call, as before (a test substitutes the source).
        images = tfposenc.data.load(combination.dataset, split, config.data_dir)
        return images.map(lambda x, y: (tf.cast(x, tf.float32), y))

    def flipped(pair, draw):
        # Stateless, seeded per element: the same flips at a seed however the map runs.
        image, label = pair
        return tf.image.stateless_random_flip_left_right(image, seed=[draw, 1]), label

    def served(images, labels, cut=None):
        batches = tf.data.Dataset.from_tensor_slices((images, labels))
        batches = batches.map(lambda x, y: (tf.cast(x, tf.float32), y))
        return (batches.map(cut) if cut else batches).batch(config.eval_batch_size)

    train_split = source("train")
    held = train_split.take(config.holdout_examples)
    train = train_split.skip(config.holdout_examples).map(train_map, tf.data.AUTOTUNE)
    train = train.cache().shuffle(4096, seed=seed).repeat()
    if config.flip:
        train = tf.data.Dataset.zip((train, tf.data.Dataset.random(seed=seed)))
        train = train.map(flipped, num_parallel_calls=tf.data.AUTOTUNE)
    train = training_crop(train, max_shift, shift_mode, crop_size=crop_size, model=model, seed=seed)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    source_split = held if config.test_on_holdout else source("test")
    prepared = source_split if windows else source_split.map(test_map)
    images, labels = _arrays(prepared.take(config.test_examples or -1))
    cut = test_map if windows else None
    test = served(images, labels, cut)
    if config.holdout_examples:
        validation = served(*_arrays(held if windows else held.map(test_map)), cut)
    else:
        validation = test
    extra = {
        "test_digest": digest(images, labels),
        "test_examples": len(labels),
        "views": served(images, labels) if windows else test,
    }
    return Data(train, validation, test, extra)


__all__ = [
    "CROP_MODE_DATASETS",
    "crop_mode",
    "digest",
    "margin",
    "pipelines",
    "training_shift",
]
