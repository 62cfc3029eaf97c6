"""Segmentation canvases: a k x k grid of digits, every pixel labelled with its digit.

The CPU analogue of Cityscapes for the position attack (issue 11): every cell of a
`grid_size x grid_size` canvas holds one image of the source, in source order; a pixel is
labelled with its image's class where the image has *ink* and with the background class
elsewhere.

Ink: a pixel whose mean over the colour channels is `>= ink_threshold`, measured in pixel
space (0..255) on the image as pasted (after the `cell_size` resize). The default, 128, is
half intensity; on the embedded digits (values 0, 16, ..., 255) it marks 32% of the
pixels as ink.

Canvases stay in pixel space (float32, 0..255, not normalised): a tfposenc `Task` owns
its normalisation.
"""

import tensorflow as tf

from tfposenc.validation import check_number, check_optional_positive_int, check_positive_int

DEFAULT_INK_THRESHOLD = 128.0


def check_segmentation_args(
    grid_size=3, cell_size=None, ink_threshold=DEFAULT_INK_THRESHOLD, background_class=10
):
    check_positive_int(grid_size, "grid_size")
    check_optional_positive_int(cell_size, "cell_size")
    check_number(ink_threshold, "ink_threshold", 0, 255)
    check_positive_int(background_class, "background_class", minimum=0)


def tile_cells(images, grid_size):
    """Tiles `[grid_size ** 2, c, c, ...]` cells row-major into one `[k * c, k * c, ...]` map.

    Cell `i` lands at rows `(i // k) * c ...` and columns `(i % k) * c ...`. Works for
    images (`[n, c, c, C]`) and label maps (`[n, c, c]`), eagerly and inside `Dataset.map`.
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    cell_h, cell_w = shape[1], shape[2]
    rest = shape[3:]
    grid = tf.reshape(images, tf.concat([[grid_size, grid_size, cell_h, cell_w], rest], 0))
    perm = [0, 2, 1, 3] + list(range(4, images.shape.rank + 1))
    grid = tf.transpose(grid, perm)
    return tf.reshape(grid, tf.concat([[grid_size * cell_h, grid_size * cell_w], rest], 0))


def ink_labels(image, label, ink_threshold=DEFAULT_INK_THRESHOLD, background_class=10):
    """The label map of one pixel-space image `[H, W, C]`: `label` on ink, background elsewhere."""
    ink = tf.reduce_mean(tf.cast(image, tf.float32), axis=-1) >= float(ink_threshold)
    label = tf.cast(label, tf.int64)
    return tf.where(ink, label, tf.constant(background_class, tf.int64))


def make_segmentation(
    dataset,
    grid_size=3,
    cell_size=None,
    ink_threshold=DEFAULT_INK_THRESHOLD,
    background_class=10,
    flip=False,
    seed=None,
):
    """Maps `(uint8 image, label)` examples to `(float32 canvas, int64 label map)` canvases.

    Every `grid_size ** 2` consecutive source examples fill one canvas, row-major (the
    first example in the top-left cell); a remainder smaller than a canvas is dropped, so
    a source of `n` images gives `n // grid_size ** 2` canvases. Shuffle the source
    (with `reshuffle_each_iteration=True`) for new canvases every epoch.

    Args:
        dataset: `tf.data.Dataset` of `(image [c, c, C] uint8, label)`, as
            `tfposenc.data.load` gives.
        grid_size: int >= 1, cells per side (`k`). Defaults to `3`.
        cell_size: int or None, resize every image to `cell_size x cell_size` (bilinear,
            antialiased) before pasting; None keeps its size. Defaults to `None`.
        ink_threshold: number in [0, 255]: a pixel is ink where its mean over the colour
            channels is at least this (pixel space, after resizing). Defaults to `128`.
        background_class: int, the label of every pixel without ink; with the ten
            digits use `10`, so the task has 11 classes. Defaults to `10`.
        flip: bool, mirror each canvas left-right together with its label map with
            probability 1/2 (training; the authors' DeepLab trains with random flips,
            so a mirrored canvas keeps its meaning). Defaults to `False`.
        seed: int or None, seeds the flips (`tf.data.Dataset.random`, drawn anew on
            every iteration). Defaults to `None`.

    Returns:
        A `tf.data.Dataset` of `(canvas float32 [k * c, k * c, C] in 0..255,
        labels int64 [k * c, k * c])`.

    Example:

    >>> canvases = make_segmentation(load("digits", "train"), grid_size=3, cell_size=16)
    >>> canvas, labels = next(iter(canvases))
    >>> canvas.shape, labels.shape
    (TensorShape([48, 48, 3]), TensorShape([48, 48]))
    """
    check_segmentation_args(grid_size, cell_size, ink_threshold, background_class)
    cells = grid_size * grid_size

    def prepare(image, label):
        image = tf.cast(image, tf.float32)
        if cell_size is not None and (image.shape[0] != cell_size or image.shape[1] != cell_size):
            image = tf.image.resize(image, (cell_size, cell_size), antialias=True)
            image = tf.clip_by_value(image, 0.0, 255.0)
        return image, ink_labels(image, label, ink_threshold, background_class)

    def assemble(images, labels):
        canvas = tile_cells(images, grid_size)
        label_map = tile_cells(labels, grid_size)
        if images.shape[1] is not None and images.shape[2] is not None:
            height, width = grid_size * images.shape[1], grid_size * images.shape[2]
            canvas = tf.ensure_shape(canvas, (height, width, images.shape[3]))
            label_map = tf.ensure_shape(label_map, (height, width))
        return canvas, label_map

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    canvases = dataset.batch(cells, drop_remainder=True).map(
        assemble, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if not flip:
        return canvases
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((canvases, randoms)).map(
        lambda example, rand: flip_pair(*example, tf.math.floormod(rand, 2) == 1),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def flip_pair(canvas, label_map, flip):
    """Mirrors `canvas [H, W, C]` and `label_map [H, W]` left-right together when the
    boolean `flip` holds; eagerly and inside `Dataset.map`."""
    return tf.cond(
        flip,
        lambda: (tf.reverse(canvas, [1]), tf.reverse(label_map, [1])),
        lambda: (canvas, label_map),
    )
