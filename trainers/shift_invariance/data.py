"""The shift-invariance experiment's pipelines: resized pixels on a black margin, crops
and flips; a test set held in memory, the same images for every row."""

import hashlib

import numpy as np

from trainers.framework.experiment import Data


def margin(config):
    """The black margin (px) around the content on each side (0 without `content_size`)."""
    if config.content_size is None:
        return 0
    return (config.image_size - config.content_size) // 2


def _arrays(dataset):
    """`(uint8 images, int64 labels)` numpy arrays of a dataset of `(image, label)`."""
    images, labels = [], []
    for image, label in dataset.as_numpy_iterator():
        images.append(image.astype("uint8"))
        labels.append(int(label))
    return np.stack(images), np.asarray(labels, "int64")


def digest(images, labels):
    """The SHA-1 of a test set's pixels and labels: equal for rows measured alike."""
    return hashlib.sha1(images.tobytes() + labels.tobytes()).hexdigest()


def pipelines(config, combination):
    """Train (resized pixels on a black margin, random crops after a `crop_pad` black
    pad, optional flips: the same at the same seed, run after run), validation (holdout
    or test), test.

    The test set is read once into memory (uint8 arrays) and served from them, so every
    row is measured on exactly the same images in the same order; `extra` holds its
    `test_digest` and `test_examples`.
    """
    import tensorflow as tf

    from tfposenc.data import load

    size, pad, seed = config.image_size, config.crop_pad, combination.seed
    inner, edge = config.content_size or size, margin(config)

    def resized(split):
        def resize(image, label):
            image = tf.image.resize(tf.cast(image, tf.float32), (inner, inner))
            image = tf.clip_by_value(tf.round(image), 0.0, 255.0)
            if edge or inner != size:
                image = tf.image.pad_to_bounding_box(image, edge, edge, size, size)
            return image, label

        source = load(combination.dataset, split, config.data_dir)
        return source.map(resize, num_parallel_calls=tf.data.AUTOTUNE)

    def augment(pair, draw):
        # Stateless ops seeded per element by `draw`: the same crops and flips in every
        # run at a seed, however the parallel map interleaves (a stateful
        # `tf.image.random_crop` shared by parallel calls draws in a racy order).
        image, label = pair
        if pad:
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.stateless_random_crop(image, (size, size, 3), seed=[draw, 0])
        if config.flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=[draw, 1])
        return image, label

    def served(images, labels):
        return (
            tf.data.Dataset.from_tensor_slices((images, labels))
            .map(lambda x, y: (tf.cast(x, tf.float32), y))
            .batch(config.eval_batch_size)
        )

    train_split = resized("train")
    held = train_split.take(config.holdout_examples)
    train = train_split.skip(config.holdout_examples).cache().shuffle(4096, seed=seed)
    draws = tf.data.Dataset.random(seed=seed)  # one int64 per training image
    train = tf.data.Dataset.zip((train.repeat(), draws))
    train = train.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    source = held if config.test_on_holdout else resized("test")
    images, labels = _arrays(source.take(config.test_examples or -1))
    test = served(images, labels)
    validation = served(*_arrays(held)) if config.holdout_examples else test
    extra = {"test_digest": digest(images, labels), "test_examples": len(labels)}
    return Data(train, validation, test, extra)


__all__ = ["digest", "margin", "pipelines"]
