"""The shift-invariance experiment's pipelines: resized pixels, crops and flips."""

from trainers.framework.experiment import Data


def pipelines(config, combination):
    """Train (resized pixels, optional crop/flip), validation (holdout or test), test."""
    import tensorflow as tf

    from tfposenc.data import load

    size, pad, seed = config.image_size, config.crop_pad, combination.seed

    def resized(split):
        def resize(image, label):
            image = tf.image.resize(tf.cast(image, tf.float32), (size, size))
            return tf.clip_by_value(tf.round(image), 0.0, 255.0), label

        source = load(combination.dataset, split, config.data_dir)
        return source.map(resize, num_parallel_calls=tf.data.AUTOTUNE)

    def augment(image, label):
        if pad:
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.random_crop(image, (size, size, 3))
        if config.flip:
            image = tf.image.random_flip_left_right(image)
        return image, label

    train_split = resized("train")
    held = train_split.take(config.holdout_examples)
    train = train_split.skip(config.holdout_examples).cache().shuffle(4096, seed=seed)
    train = train.repeat().map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    test = held if config.test_on_holdout else resized("test")
    test = test.take(config.test_examples or -1).cache().batch(config.eval_batch_size)
    validation = held.batch(config.eval_batch_size).cache() if config.holdout_examples else test
    return Data(train, validation, test)


__all__ = ["pipelines"]
