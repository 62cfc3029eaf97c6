"""The channel-wise experiment's TensorFlow side: grid pipelines and the class evaluator."""

from trainers.framework.experiment import Data


def canvases(config, combination):
    """Training canvases, validation (one fixed placement pass) and test (k^2 passes
    with fresh placements, or every cell), in pixels with mean-colour empty cells.
    Class-task test batches also carry each canvas's cell: `(canvas, class, cell)`."""
    import tensorflow as tf

    from tfposenc.data import info, load, make_grid

    meta, k, seed = info(config.dataset), combination.grid_size, combination.seed
    grid = dict(grid_size=k, cell_size=config.cell_size, mean=meta.mean)
    task = dict(grid, target=combination.task)
    source = load(config.dataset, "train", config.data_dir).cache()
    source = source.shuffle(meta.splits["train"], seed=seed, reshuffle_each_iteration=True)
    train = make_grid(source.repeat(), flip=config.flip, seed=seed, **task)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    test_source = load(config.dataset, "test", config.data_dir)
    if config.test_examples:
        test_source = test_source.take(config.test_examples)
    samples = make_grid(test_source.take(3), seed=seed + 1, **task).batch(3)
    test_source = test_source.cache()
    validation = make_grid(test_source, seed=seed + 1, **task)

    def test_canvases(target):
        if config.eval_placement == "all_cells":
            return make_grid(test_source, placement="all_cells", target=target, **grid)
        return make_grid(test_source, seed=seed + 2, passes=k * k, target=target, **grid)

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


def class_per_cell(model, dataset, grid_size, verbose=0, title=None):
    """Class accuracy on `(canvas, class, cell)` batches: `accuracy` (%), `examples`
    and `per_cell_accuracy` (a `grid_size x grid_size` list of % by the canvas's cell,
    None where a cell never occurred), all from the same predictions."""
    import numpy as np
    import tensorflow as tf

    from trainers.framework import evaluators

    labelled = dataset.map(
        lambda canvas, label, cell: (canvas, tf.stack([tf.cast(label, tf.int64), cell], -1))
    )
    correct, seen = np.zeros(grid_size * grid_size), np.zeros(grid_size * grid_size)
    for logits, labels in evaluators.predictions(model, labelled, verbose, title):
        hits = np.argmax(logits, axis=-1) == labels[:, 0]
        np.add.at(correct, labels[:, 1], hits)
        np.add.at(seen, labels[:, 1], 1)
    per_cell = [
        None if n == 0 else round(100.0 * c / n, 2) for c, n in zip(correct, seen, strict=True)
    ]
    yield "accuracy", 100.0 * correct.sum() / max(seen.sum(), 1)
    yield "examples", int(seen.sum())
    yield (
        "per_cell_accuracy",
        [per_cell[r * grid_size : (r + 1) * grid_size] for r in range(grid_size)],
    )


__all__ = ["canvases", "class_per_cell"]
