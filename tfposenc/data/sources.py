"""Image classification sources as `tf.data` pipelines of `(uint8 [H, W, 3], int64)`.

`"digits"` ships inside the package (see `DIGITS.md`); `"glyphs"` (36 characters
rendered in matplotlib's fonts, white on black) and `"textured_glyphs"` (the same on 1/f
noise, 48 px: score it with `shift_mode="crop"`) are generated here (`glyphs.py`,
`GLYPHS.md`). None needs a network. CIFAR-10,
CIFAR-100 and ImageNet come through tensorflow-datasets and must already be prepared in
`data_dir` unless `download=True`: a missing dataset fails at once with a message that
says where it looked and how to put the files there.
"""

import dataclasses
import os
from importlib import resources  # noqa: E402  (Python >= 3.10: files() is in the stdlib)

import numpy as np
import tensorflow as tf

from tfposenc.data import glyphs

GLYPH_CLASSES = glyphs.CLASSES
GLYPH_SPLITS = {"train": (60, 0), "test": (20, 1)}  # (per class, seed)
_GLYPH_SPLIT_SIZES = {split: n * len(GLYPH_CLASSES) for split, (n, _) in GLYPH_SPLITS.items()}

CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()
CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
    crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
    keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
    mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
    porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
    snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television
    tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()
)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a source holds. `mean`/`std` are per channel, for pixels scaled to [0, 1]."""

    name: str
    image_size: tuple
    num_classes: int
    class_names: tuple
    splits: dict
    mean: tuple
    std: tuple
    source: str

    def to_dict(self):
        return dataclasses.asdict(self)


def _grey(value):
    """Per-channel statistics of a grey dataset: the same value in every channel."""
    return (value, value, value)


_INFOS = {
    info.name: info
    for info in (
        # mean/std of the 1,437 training images after scaling to [0, 1] (tested).
        DatasetInfo(
            "digits",
            (8, 8),
            10,
            tuple(str(i) for i in range(10)),
            {"train": 1437, "test": 360},
            _grey(0.30493),
            _grey(0.37571),
            "embedded",
        ),
        # The authors' CIFAR normalisation (their Table 1 code).
        DatasetInfo(
            "cifar10",
            (32, 32),
            10,
            tuple(CIFAR10_CLASSES),
            {"train": 50000, "test": 10000},
            (0.4914, 0.4822, 0.4465),
            (0.2023, 0.1994, 0.2010),
            "tensorflow-datasets",
        ),
        DatasetInfo(
            "cifar100",
            (32, 32),
            100,
            CIFAR100_CLASSES,
            {"train": 50000, "test": 10000},
            (0.5071, 0.4865, 0.4409),
            (0.2673, 0.2564, 0.2762),
            "tensorflow-datasets",
        ),
        # Variable-size images; class names come from tfds once the dataset is prepared.
        DatasetInfo(
            "imagenet2012",
            (None, None),
            1000,
            (),
            {"train": 1281167, "validation": 50000},
            (0.485, 0.456, 0.406),
            (0.229, 0.224, 0.225),
            "tensorflow-datasets",
        ),
        # Generated (GLYPHS.md): 60 / 20 per class, seeds 0 / 1; mean/std of train (tested).
        DatasetInfo(
            "glyphs",
            (16, 16),
            36,
            GLYPH_CLASSES,
            _GLYPH_SPLIT_SIZES,
            _grey(0.17133),
            _grey(0.33676),
            "generated",
        ),
        DatasetInfo(
            "textured_glyphs",
            (48, 48),
            36,
            GLYPH_CLASSES,
            _GLYPH_SPLIT_SIZES,
            _grey(0.32432),
            _grey(0.14138),
            "generated",
        ),
    )
}

DATASETS = tuple(_INFOS)  # tfposenc.vocabulary.DATASETS lists the same (tested)


def _check_name(name):
    if name not in _INFOS:
        raise ValueError(f"`name` must be one of {DATASETS}. Received: name={name!r}")


def info(name):
    """Returns the `DatasetInfo` of a source; works offline for every source."""
    _check_name(name)
    return _INFOS[name]


def _digits_arrays():
    with resources.files("tfposenc.data").joinpath("digits.npz").open("rb") as f:
        data = np.load(f)
        images, labels, is_test = data["images"], data["labels"], data["is_test"]
    images = np.round(images.astype("float32") * (255.0 / 16.0)).astype("uint8")
    images = np.repeat(images[..., None], 3, axis=-1)
    return images, labels.astype("int64"), is_test


def load_digits_arrays(split="train"):
    """The embedded digits as numpy arrays `(uint8 [N, 8, 8, 3], int64 [N])`."""
    if split not in ("train", "test", "all"):
        raise ValueError(
            f"`split` must be 'train', 'test' or 'all' for digits. Received: split={split!r}"
        )
    images, labels, is_test = _digits_arrays()
    keep = {"train": ~is_test, "test": is_test, "all": np.ones_like(is_test)}[split]
    return images[keep], labels[keep]


def load_glyph_arrays(name="glyphs", split="train"):
    """`"glyphs"` or `"textured_glyphs"` as numpy arrays `(uint8 [N, H, W, 3], int64 [N])`."""
    if name not in ("glyphs", "textured_glyphs"):
        raise ValueError(f"`name` must be 'glyphs' or 'textured_glyphs'. Received: name={name!r}")
    if split not in GLYPH_SPLITS:
        raise ValueError(f"`split` must be 'train' or 'test' for {name}. Received: split={split!r}")
    per_class, seed = GLYPH_SPLITS[split]
    if name == "glyphs":
        images, labels = glyphs.render_glyphs(per_class, 16, seed)
    else:
        images, labels = glyphs.textured_glyphs(per_class, 48, 16, seed)
    return glyphs.to_pixels(images), np.array(labels)


class DatasetNotFoundError(FileNotFoundError):
    """A tensorflow-datasets source is not prepared where it was looked for."""


def _manual_help(name, data_dir):
    if name == "imagenet2012":
        return (
            f"download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
            f"image-net.org into {os.path.join(data_dir, 'downloads', 'manual')}, then run "
            f"`tfds build imagenet2012 --data_dir {data_dir}` (or, with network access, "
            f"`tfposenc.data.load({name!r}, download=True)`)"
        )
    return (
        f"on a machine with network access run `tfds build {name} --data_dir {data_dir}` "
        f"and copy {os.path.join(data_dir, name)} here (or, with network access, "
        f"`tfposenc.data.load({name!r}, download=True)`)"
    )


def _load_tfds(name, split, data_dir, download):
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    )
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=os.path.join(data_dir, "downloads", "manual")
            )
        )
    read_config = tfds.ReadConfig(try_autocache=False)
    try:
        # Reads only prepared files: no download is attempted, so offline fails at once.
        return builder.as_dataset(split=split, as_supervised=True, read_config=read_config)
    except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as error:
        raise DatasetNotFoundError(
            f"Dataset {name!r} (split {split!r}) is not prepared in {data_dir}: "
            f"{_manual_help(name, data_dir)}."
        ) from error


def load(name, split="train", data_dir=None, download=False):
    """Returns a `tf.data.Dataset` of `(image uint8 [H, W, 3], label int64)`.

    Args:
        name: `"digits"` (embedded: 1,437 train / 360 test, 8 px), `"glyphs"`
            (generated: 2,160 train / 720 test, 16 px, 36 classes), `"textured_glyphs"`
            (the same on 1/f noise, 48 px), `"cifar10"`, `"cifar100"` or
            `"imagenet2012"`.
        split: `"train"` or `"test"` (`"validation"` for ImageNet); tensorflow-datasets
            sources accept any tfds split string. Defaults to `"train"`.
        data_dir: where tensorflow-datasets looks for prepared data. Defaults to
            `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
        download: bool, let tensorflow-datasets download and prepare a missing dataset
            (needs network). Defaults to `False`: a missing dataset raises
            `DatasetNotFoundError` at once.
    """
    _check_name(name)
    if name == "digits":
        images, labels = load_digits_arrays(split)
        return tf.data.Dataset.from_tensor_slices((images, labels))
    if name in ("glyphs", "textured_glyphs"):
        return tf.data.Dataset.from_tensor_slices(load_glyph_arrays(name, split))
    dataset = _load_tfds(name, split, data_dir, download)
    return dataset.map(
        lambda image, label: (tf.cast(image, tf.uint8), tf.cast(label, tf.int64)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
