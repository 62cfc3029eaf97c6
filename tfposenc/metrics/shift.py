"""Two randomly shifted views of a batch: the input of AugShift and of shift consistency.

Conventions (channels_last images `[batch, height, width, channels]`): an offset
`(dy, dx)` moves the content `dy` pixels down and `dx` pixels right.

- `mode="crop"`: a linear shift. The view is a window of the original size cut from the
  image padded by `max_shift - 1` pixels on the top and left:
  `view[i, j] = x[i - dy, j - dx]`, with pixels outside the image given by `padding`
  (`"zero"` by default). Content enters at one border and leaves at the other.
- `mode="circular"`: `view = np.roll(x, (dy, dx), axis=(0, 1))`.

Offsets are drawn independently per axis, uniformly in `[0, max_shift)`, so the two views
differ by up to `max_shift - 1` pixels per axis: `max_shift=8` and `16` are the poster's
Cons.8 and Cons.16 protocols (BlurPool's reference draws the same way).
"""

import keras
from keras import ops

from tfposenc.layers.padding2d import PADDING_MODES, check_mode, pad_spatial

SHIFT_MODES = ("crop", "circular")
SHIFT_PER = ("image", "batch")


def check_shift_args(max_shift, mode="crop", padding="zero", per="image"):
    if not isinstance(max_shift, int) or isinstance(max_shift, bool) or max_shift < 1:
        raise ValueError(
            "`max_shift` must be a positive int (offsets are drawn in [0, max_shift)). "
            f"Received: max_shift={max_shift!r}"
        )
    check_mode(mode, SHIFT_MODES, "mode")
    check_mode(padding, PADDING_MODES, "padding")
    check_mode(per, SHIFT_PER, "per")


def sample_offsets(batch_size, max_shift, per="image", seed=None):
    """Draws `[batch_size, 2]` int32 offsets `(dy, dx)` uniformly in `[0, max_shift)`.

    Args:
        batch_size: int or scalar tensor, the number of images.
        max_shift: int, the exclusive upper bound of each offset.
        per: `"image"` draws one offset pair per image; `"batch"` one pair shared by
            the batch (the BlurPool reference protocol).
        seed: int, `keras.random.SeedGenerator` or None.
    """
    check_shift_args(max_shift, per=per)
    rows = batch_size if per == "image" else 1
    offsets = keras.random.randint((rows, 2), 0, max_shift, dtype="int32", seed=seed)
    if per == "batch":
        offsets = ops.broadcast_to(offsets, (batch_size, 2))
    return offsets


def apply_shift(images, offsets, max_shift, mode="crop", padding="zero"):
    """Shifts each image by its `(dy, dx)` row of `offsets` (see the module docstring).

    One gather does the whole batch, so per-image offsets cost no more than one shared.
    """
    check_shift_args(max_shift, mode, padding)
    shape = ops.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    offsets = ops.cast(offsets, "int32")
    dy = offsets[:, 0][:, None]
    dx = offsets[:, 1][:, None]
    rows = ops.arange(height, dtype="int32")[None, :] - dy
    cols = ops.arange(width, dtype="int32")[None, :] - dx
    if mode == "crop":
        source = pad_spatial(images, ((max_shift - 1, 0), (max_shift - 1, 0)), padding)
        rows, cols = rows + (max_shift - 1), cols + (max_shift - 1)
        src_h, src_w = height + max_shift - 1, width + max_shift - 1
    else:
        source = images
        rows, cols = ops.mod(rows, height), ops.mod(cols, width)
        src_h, src_w = height, width
    base = ops.arange(batch, dtype="int32")[:, None, None] * (src_h * src_w)
    flat_index = base + rows[:, :, None] * src_w + cols[:, None, :]
    flat = ops.reshape(source, (-1, shape[3]))
    return ops.take(flat, flat_index, axis=0)


def shift_views(images, max_shift=8, mode="crop", padding="zero", per="image", seed=None):
    """Returns two views of `images` at independent random offsets in `[0, max_shift)`."""
    batch = ops.shape(images)[0]
    first = apply_shift(
        images, sample_offsets(batch, max_shift, per, seed), max_shift, mode, padding
    )
    second = apply_shift(
        images, sample_offsets(batch, max_shift, per, seed), max_shift, mode, padding
    )
    return first, second
