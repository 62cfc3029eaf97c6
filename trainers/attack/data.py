"""The position attack's data: digit segmentation and grid canvases, and Cityscapes.

Every pipeline yields pixel-space images (float32, 0..255; the models normalise) and is
built from the train split for training and ranking and from the test split (Cityscapes:
validation) for evaluation, so channels are never ranked on the data they are judged on.
"""

import json
import os

import tensorflow as tf

from tfposenc.data import DatasetNotFoundError, info, load, make_grid, make_segmentation
from tfposenc.data.segmentation import flip_pair
from trainers.attack.config import LOCATION_NETWORKS
from trainers.framework.config import seeded_name

# Cityscapes label ids (0..33, -1) -> the 19 train ids; 255 is ignored (cityscapesScripts).
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
CITYSCAPES_CLASSES = 19
IGNORE = 255


def segmentation_classes(config):
    """`(num_classes, ignore_class)` of the segmentation source."""
    if config.dataset == "cityscapes":
        return CITYSCAPES_CLASSES, IGNORE
    return info(config.dataset).num_classes + 1, None  # the digits and the background


def segmentation_stats(config):
    """`(mean, std)` in [0, 1] units: the source's statistics (ImageNet's for Cityscapes)."""
    meta = info("imagenet2012" if config.dataset == "cityscapes" else config.dataset)
    return meta.mean, meta.std


def load_cityscapes(split, data_dir=None, image_size=(512, 1024)):
    """Cityscapes fine annotations as `(float32 image [h, w, 3] 0..255, int64 train ids)`,
    resized to `image_size` (bilinear / nearest); raises `DatasetNotFoundError` with the
    manual-download instructions when tensorflow-datasets has not prepared it."""
    import tensorflow_datasets as tfds  # noqa: PLC0415 (seconds to import; only Cityscapes)

    data_dir = os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    )
    name = "cityscapes/semantic_segmentation"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        dataset = builder.as_dataset(split=split, read_config=tfds.ReadConfig(try_autocache=False))
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as error:
        manual = os.path.join(data_dir, "downloads", "manual")
        raise DatasetNotFoundError(
            f"Dataset 'cityscapes' (split {split!r}) is not prepared in {data_dir}: register at "
            "https://www.cityscapes-dataset.com, download leftImg8bit_trainvaltest.zip and "
            f"gtFine_trainvaltest.zip into {manual}, then run `tfds build {name} "
            f"--data_dir {data_dir}` (or pass --data-dir)."
        ) from error
    table = [IGNORE] * 256
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        table[label_id] = train_id
    table = tf.constant(table, tf.int64)

    def convert(example):
        image = tf.image.resize(tf.cast(example["image_left"], tf.float32), image_size)
        labels = tf.image.resize(example["segmentation_label"], image_size, method="nearest")
        return image, tf.gather(table, tf.cast(labels[..., 0], tf.int64))

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def _segmentation_source(config, split, seed, flip=False):
    """Canvases of one split, repeated; digit canvases are new orders of the digits on
    every pass (reproducible for `seed`); `flip`: each canvas mirrored with its label
    map with probability 1/2."""
    if config.dataset == "cityscapes":
        split = {"train": "train", "test": "validation"}[split]
        source = load_cityscapes(split, config.data_dir, tuple(config.image_size))
        if split != "train":
            return source
        source = source.shuffle(64, seed=seed).repeat()
        if flip:
            randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            source = tf.data.Dataset.zip((source, randoms)).map(
                lambda pair, rand: flip_pair(*pair, tf.math.floormod(rand, 2) == 1)
            )
        return source
    source = load(config.dataset, split, config.data_dir).cache()
    size = info(config.dataset).splits[split]
    source = source.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    return make_segmentation(
        source.repeat(), config.grid_size, config.cell_size, flip=flip, seed=seed
    )


def segmentation_data(config, seed=0):
    """`(train, test, ranking, samples)` pipelines of `(images, label maps)`; only the
    training canvases are flipped (`config.flip`). `seed`: the combination's (training
    canvases `seed`, test `seed + 1`, ranking `seed + 3`). Defaults to 0."""
    batch = config.batch_size
    train = _segmentation_source(config, "train", seed, flip=config.flip)
    train = train.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    test = _segmentation_source(config, "test", seed + 1)
    test = test.take(config.test_examples) if config.test_examples else test
    test = test.batch(config.eval_batch_size).cache()
    ranking = _segmentation_source(config, "train", seed + 3).take(config.rank_examples)
    ranking = ranking.batch(config.eval_batch_size).cache()
    samples = test.unbatch().take(config.figure_examples).batch(config.figure_examples)
    return train, test, ranking, samples


def location_data(config, seed=0):
    """`(train, test, ranking, samples)` pipelines of `(canvases, cells)`: test
    canvases put each of `location_test_examples` test images in every cell; training
    digits are mirrored in their cell with probability 1/2 (`config.flip`: the label,
    the cell, is kept). `seed`: the combination's (training `seed`, ranking `seed + 3`,
    figure samples `seed + 1`). Defaults to 0."""
    name, k = config.location_dataset, config.location_grid_size
    grid = dict(grid_size=k, cell_size=config.location_cell_size, mean=info(name).mean)
    size = info(name).splits["train"]
    source = load(name, "train", config.data_dir).cache()
    shuffled = source.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    train = make_grid(shuffled.repeat(), seed=seed, flip=config.flip, **grid)
    train = train.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    test_source = load(name, "test", config.data_dir).take(config.location_test_examples)
    test = make_grid(test_source, placement="all_cells", **grid).batch(config.eval_batch_size)
    ranking = make_grid(source.repeat(), seed=seed + 3, **grid).take(config.rank_examples)
    samples = make_grid(test_source, seed=seed + 1, **grid).take(config.figure_examples)
    return (
        train,
        test.cache(),
        ranking.batch(config.eval_batch_size).cache(),
        samples.batch(config.figure_examples),
    )


# The file name a channel-wise run gives a location model (`models/<name>.keras`, the
# group with `-seed<seed>`, `seeded_name`): part of that run's output format, read from
# its files, never from its code.
CHANNELWISE_MODEL = "k{grid_size}-{padding_mode}-{network}-location"


def channelwise_name(config, combination):
    """The channel-wise run's name of the location model for `combination` at its seed
    (`classifier` for `location`, `gapnet` for `location_gapnet`)."""
    network = LOCATION_NETWORKS.get(combination.task, "gapnet")
    group = CHANNELWISE_MODEL.format(
        grid_size=config.location_grid_size,
        padding_mode=combination.padding_mode,
        network=network,
    )
    return seeded_name(group, combination.seed)


def saved_model_path(config, combination):
    """The `.keras` file `--models` provides for `combination`, or None (then train)."""
    if config.models is None:
        return None
    folder = os.path.join(config.models, "models")
    for name in (combination.name, channelwise_name(config, combination)):
        if combination.task in LOCATION_NETWORKS or name == combination.name:
            path = os.path.join(folder, f"{name}.keras")
            if os.path.isfile(path):
                return path
    if combination.task in LOCATION_NETWORKS:
        raise ValueError(
            f"`models` holds no {channelwise_name(config, combination)}.keras. "
            f"Received: models={config.models!r}"
        )
    return None


def check_channelwise_run(config):
    """Raises ValueError when `--models` is a channel-wise run of other canvases."""
    path = os.path.join(config.models, "config.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        theirs = json.load(f)
    if theirs.get("experiment") != "channelwise":
        return
    mine = {"dataset": config.location_dataset, "cell_size": config.location_cell_size}
    for key, value in mine.items():
        if theirs.get(key) != value:
            raise ValueError(
                f"`models` was trained with {key}={theirs.get(key)!r}; pass "
                f"--location-{key.replace('_', '-')} {theirs.get(key)}. "
                f"Received: models={config.models!r}"
            )
