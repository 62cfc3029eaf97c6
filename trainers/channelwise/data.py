"""The channel-wise experiment's TensorFlow side: the grid pipelines (scoring is in
`trainers.channelwise.evaluation`)."""

import tensorflow as tf

from tfposenc.data import info, load, make_grid
from trainers.framework.experiment import Data
from trainers.framework.test_sets import grid_test_set


def sources(config):
    """`(train, validation, test)` image datasets: the validation images are the first
    `config.validation_examples` of the train split, held out of training; the test
    images the first `config.test_examples` of the test split (all when None)."""
    full = load(config.dataset, "train", config.data_dir)
    held_out = full.take(config.validation_examples).cache()
    train = full.skip(config.validation_examples).cache()
    test = load(config.dataset, "test", config.data_dir)
    if config.test_examples:
        test = test.take(config.test_examples)
    return train, held_out, test.cache()


def canvases(config, combination):
    """Training canvases, validation (held-out training images, one fixed placement
    each: the learning curves and any stopping rule never see the test images) and test
    (k^2 passes with fresh placements, or every cell), in pixels with mean-colour empty
    cells.
    Class-task test batches also carry each canvas's cell: `(canvas, class, cell)`."""
    meta, k, seed = info(config.dataset), combination.grid_size, combination.seed
    grid = dict(grid_size=k, cell_size=config.cell_size, mean=meta.mean)
    task = dict(grid, target=combination.task)
    source, held_out, test_source = sources(config)
    source = source.shuffle(meta.splits["train"], seed=seed, reshuffle_each_iteration=True)
    train = make_grid(source.repeat(), flip=config.flip, seed=seed, **task)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    samples = make_grid(test_source.take(3), seed=seed + 1, **task).batch(3)
    validation = make_grid(held_out, seed=seed + 1, **task)

    def test_canvases(target):
        return grid_test_set(
            config.dataset, k, target, cell_size=config.cell_size, seed=seed,
            placement=config.eval_placement, source=test_source,
        )  # fmt: skip

    test = test_canvases(combination.task)
    if combination.task == "class":  # the same placements, labelled with their cell
        cells = test_canvases("location").map(lambda canvas, cell: cell)
        test = tf.data.Dataset.zip((test, cells)).map(lambda x, cell: (*x, cell))
    return Data(
        train,
        validation.batch(config.batch_size).cache(),  # the same placements every epoch
        test.batch(config.eval_batch_size),
        extra={"samples": samples},
    )


__all__ = ["canvases", "sources"]
