"""Grid canvases: one normalised image pasted into one cell of a zero canvas.

The authors' protocol (PAPER.md section 2): normalise the image, paste it into one cell
of a `grid_size x grid_size` canvas of zeros (empty cells are 0 *after* normalisation),
draw the cell uniformly at random every time an example is drawn, and label it
`row * grid_size + col` (location) or with the image's own class.
"""

import tensorflow as tf

TARGETS = ("location", "class")
PLACEMENTS = ("random", "all_cells")


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")


def check_grid_args(grid_size=3, target="location", cell_size=None, placement="random", passes=1):
    _check_positive_int(grid_size, "grid_size")
    if target not in TARGETS:
        raise ValueError(f"`target` must be one of {TARGETS}. Received: target={target!r}")
    if cell_size is not None:
        _check_positive_int(cell_size, "cell_size")
    if placement not in PLACEMENTS:
        raise ValueError(
            f"`placement` must be one of {PLACEMENTS}. Received: placement={placement!r}"
        )
    _check_positive_int(passes, "passes")


def paste(image, cell, grid_size):
    """Pastes `image` `[c, c, C]` into cell `cell` (row-major) of a zero canvas.

    Works eagerly and inside `Dataset.map`; returns `[grid_size * c, grid_size * c, C]`
    with the image at rows `row * c ...` and columns `col * c ...`,
    `row, col = divmod(cell, grid_size)`, and exact zeros elsewhere.
    """
    _check_positive_int(grid_size, "grid_size")
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
    std=None,
    flip=False,
    seed=None,
    placement="random",
    passes=1,
):
    """Maps a dataset of `(uint8 image, label)` to `(float32 canvas, label)`.

    Args:
        dataset: `tf.data.Dataset` of `(image [H, W, C] uint8, label)`.
        grid_size: int >= 1, cells per side (`k`). Defaults to `3`.
        target: `"location"` (label `row * k + col`) or `"class"` (the image's label).
            Defaults to `"location"`.
        cell_size: int or None, resize images to this cell size; None keeps theirs.
        mean, std: per-channel normalisation of pixels in [0, 1]; None skips it.
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

    def prepare(image, rand):
        image = normalize(image, mean, std, cell_size)
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
                lambda cell: (paste(prepare(image, cell), cell, grid_size), label_of(cell, label))
            )
            return canvases

        return dataset.flat_map(spread)

    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def place(example, rand):
        image, label = example
        rand = tf.abs(rand)
        cell = rand % cells
        return paste(prepare(image, rand), cell, grid_size), label_of(cell, label)

    return tf.data.Dataset.zip((dataset, randoms)).map(
        place, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
