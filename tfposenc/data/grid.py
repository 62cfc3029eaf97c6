"""Grid canvases: one image pasted into one cell of a `grid_size x grid_size` canvas.

The authors' Table 1 protocol: normalise the image, paste it into one cell
of a canvas of zeros (empty cells are 0 *after* normalisation), draw the cell uniformly
at random every time an example is drawn, and label it `row * grid_size + col`
(location) or with the image's own class.

Models in this package own their normalisation, so canvases are built in pixel space
(float32, 0..255) with empty cells filled with the dataset's mean colour: after the
model's `(pixels - 255 * mean) / (255 * std)` they are exactly 0, the authors' canvas.
"""

import tensorflow as tf

from tfposenc.normalization import pixel_mean
from tfposenc.validation import check_choice, check_optional_positive_int, check_positive_int
from tfposenc.vocabulary import PLACEMENTS, TARGETS


def check_grid_args(grid_size=3, target="location", cell_size=None, placement="random", passes=1):
    check_positive_int(grid_size, "grid_size")
    check_choice(target, TARGETS, "target")
    check_optional_positive_int(cell_size, "cell_size")
    check_choice(placement, PLACEMENTS, "placement")
    check_positive_int(passes, "passes")


def paste(image, cell, grid_size, fill=None):
    """Pastes `image` `[c, c, C]` into cell `cell` (row-major) of a canvas.

    Works eagerly and inside `Dataset.map`; returns `[grid_size * c, grid_size * c, C]`
    with the image at rows `row * c ...` and columns `col * c ...`,
    `row, col = divmod(cell, grid_size)`, and `fill` (per-channel values; exact zeros
    when None) elsewhere.
    """
    check_positive_int(grid_size, "grid_size")
    if isinstance(cell, int) and not 0 <= cell < grid_size * grid_size:
        raise ValueError(f"`cell` must be in [0, {grid_size * grid_size}). Received: cell={cell!r}")
    image = tf.convert_to_tensor(image)
    cell = tf.cast(cell, tf.int32)
    row, col = cell // grid_size, cell % grid_size
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    paddings = [
        [row * height, (grid_size - 1 - row) * height],
        [col * width, (grid_size - 1 - col) * width],
        [0, 0],
    ]
    canvas = tf.pad(image, paddings)
    if fill is not None:  # exact: image + 0 inside the cell, 0 + fill outside
        outside = tf.pad(tf.zeros_like(image[:, :, :1]), paddings, constant_values=1)
        canvas = canvas + outside * tf.cast(tf.reshape(fill, [-1]), image.dtype)
    if image.shape[0] is not None and image.shape[1] is not None:
        canvas = tf.ensure_shape(
            canvas, (grid_size * image.shape[0], grid_size * image.shape[1], image.shape[2])
        )
    return canvas


def normalize(image, mean=None, std=None, cell_size=None):
    """uint8 pixels -> float32 `(x / 255 - mean) / std`, resized to `cell_size` if set."""
    image = tf.cast(image, tf.float32) / 255.0
    if cell_size is not None and (image.shape[0] != cell_size or image.shape[1] != cell_size):
        image = tf.image.resize(image, (cell_size, cell_size), antialias=True)
    if mean is not None:
        image = image - tf.constant(mean, tf.float32)
    if std is not None:
        image = image / tf.constant(std, tf.float32)
    return image


def make_grid(
    dataset,
    grid_size=3,
    target="location",
    cell_size=None,
    mean=None,
    flip=False,
    seed=None,
    placement="random",
    passes=1,
):
    """Maps a dataset of `(uint8 image, label)` to `(float32 pixel canvas, label)`.

    Args:
        dataset: `tf.data.Dataset` of `(image [H, W, C] uint8, label)`.
        grid_size: int >= 1, cells per side (`k`). Defaults to `3`.
        target: `"location"` (label `row * k + col`) or `"class"` (the image's label).
            Defaults to `"location"`.
        cell_size: int or None, resize images to this cell size; None keeps theirs.
        mean: per-channel mean of the dataset in [0, 1] units (`info(name).mean`):
            empty cells get the colour `255 * mean`, which a model normalising with
            the same mean maps to exactly 0. None: black (0). Canvases stay in pixel
            space (float32, 0..255); the model normalises.
        flip: bool, random horizontal flip of the image before pasting (training).
        seed: int or None. Placements (and flips) come from `tf.data.Dataset.random`
            re-randomised on every iteration: a fresh cell every time an example is
            drawn, reproducible for a given seed.
        placement: `"random"` (one uniformly drawn cell per draw, the authors'
            protocol) or `"all_cells"` (every image in every cell, `k * k` canvases per
            image, in cell order: a deterministic evaluation). Defaults to `"random"`.
        passes: int, repeat the source this many times with fresh random placements.
            The authors evaluate with `passes = k * k`. Defaults to `1`.
    """
    check_grid_args(grid_size, target, cell_size, placement, passes)
    cells = grid_size * grid_size

    fill = None if mean is None else tf.constant(pixel_mean(mean))

    def prepare(image, rand):
        image = tf.cast(image, tf.float32)
        if cell_size is not None and (image.shape[0], image.shape[1]) != (cell_size,) * 2:
            image = tf.image.resize(image, (cell_size, cell_size), antialias=True)
        if flip:
            do_flip = (rand // cells) % 2 == 1
            image = tf.cond(do_flip, lambda: tf.image.flip_left_right(image), lambda: image)
        return image

    def label_of(cell, label):
        return tf.cast(cell, tf.int64) if target == "location" else tf.cast(label, tf.int64)

    if passes > 1:
        dataset = dataset.repeat(passes)
    if placement == "all_cells":

        def spread(image, label):
            canvases = tf.data.Dataset.range(cells).map(
                lambda cell: (
                    paste(prepare(image, cell), cell, grid_size, fill),
                    label_of(cell, label),
                )
            )
            return canvases

        return dataset.flat_map(spread)

    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def place(example, rand):
        image, label = example
        rand = tf.abs(rand)
        cell = rand % cells
        return paste(prepare(image, rand), cell, grid_size, fill), label_of(cell, label)

    return tf.data.Dataset.zip((dataset, randoms)).map(
        place, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
