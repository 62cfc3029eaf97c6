"""Two randomly shifted views of a batch: the input of AugShift and of shift consistency.

Conventions (channels_last images `[batch, height, width, channels]`): an offset
`(dy, dx)` moves the content `dy` pixels down and `dx` pixels right. The shift kind is
`shift_mode`; the fill of pixels shifted in from outside is `padding_mode`.

- `"centred"` (the poster's Cons.m, Zhang's crop protocol on an image with a fill band
  around it): offsets uniform in `[m // 2 - m + 1, m // 2]` per axis (`m = max_shift`:
  `[-3, 4]` for 8, `[-7, 8]` for 16, `[0, 0]` for 1), `view[i, j] = x[i - dy, j - dx]`
  with `padding_mode` fill. Two views differ by at most `m - 1` pixels per axis, and
  the window is centred on the image. The default of `shift_consistency`.
- `"symmetric"` (the default of `shift_views`, AugShift's views; APS's convention, Chaman & Dokmanic 2021): pad `max_shift`
  pixels on every side and cut a window of the original size, offsets uniform in
  `[-max_shift, max_shift]` per axis: `view[i, j] = x[i - dy, j - dx]`, outside pixels
  filled by `padding_mode`. Fill appears on every side, equally often.
- `"one_sided"`: pad `max_shift - 1` pixels on the top and left only, offsets in
  `[0, max_shift)`. The fill band is always top-left and content always leaves at the
  bottom-right: a bias, kept for comparison with earlier runs of this package.
- `"crop"` (Zhang, ICML 2019, the poster's Cons.8 / Cons.16 on ImageNet): two windows of
  `crop_size` cut from the image itself at offsets in `[0, max_shift)`, with no fill
  anywhere: `view[i, j] = x[s + i + dy, s + j + dx]`, where the windows' region
  (`crop_size + max_shift - 1` px) is centred in the image: `s = (size - region) // 2`
  per axis (0 when `crop_size` is its default `size - max_shift + 1`). Feed images
  larger than the model's input (ImageNet: resize to 256, crop 224); every `max_shift`
  then cuts windows around the same centre.
- `"circular"`: `view = np.roll(x, (dy, dx), axis=(0, 1))`, offsets in `[0, max_shift)`.

"Cons.m" in this package is the percentage of images whose two views (independent
offsets per view and axis, drawn as above with `max_shift=m`) get the same top-1 class.
Under `"centred"` (the default of `shift_consistency`: the poster's Cons.m), `"crop"`,
`"one_sided"` and `"circular"` the two views differ by at most `m - 1` pixels per axis
(Zhang's protocol); under `"symmetric"` by up to `2 m`.
"""

import keras
from keras import ops

from tfposenc.layers.padding2d import PADDING_MODES, pad_spatial
from tfposenc.validation import check_choice, check_optional_positive_int, check_positive_int
from tfposenc.vocabulary import SHIFT_MODES, SHIFT_PER


def resolve_shift_mode(shift_mode, mode=None):
    """`mode` is an accepted alias of `shift_mode` (the kind of shift, not a border)."""
    return shift_mode if mode is None else mode


def check_shift_args(max_shift, shift_mode="symmetric", padding_mode="zero", per="image"):
    check_positive_int(max_shift, "max_shift")
    check_choice(shift_mode, SHIFT_MODES, "shift_mode")
    check_choice(padding_mode, PADDING_MODES, "padding_mode")
    check_choice(per, SHIFT_PER, "per")


def offset_range(max_shift, shift_mode="symmetric"):
    """The inclusive `(low, high)` of each offset under `shift_mode`."""
    if shift_mode == "symmetric":
        return -max_shift, max_shift
    if shift_mode == "centred":
        return max_shift // 2 - max_shift + 1, max_shift // 2
    return 0, max_shift - 1


def sample_offsets(batch_size, max_shift, per="image", seed=None, shift_mode="symmetric"):
    """Draws `[batch_size, 2]` int32 offsets `(dy, dx)`, uniform over `offset_range`.

    Args:
        batch_size: int or scalar tensor, the number of images.
        max_shift: int >= 1.
        per: `"image"` draws one offset pair per image; `"batch"` one pair shared by
            the batch (the BlurPool reference code).
        seed: int, `keras.random.SeedGenerator` or None.
        shift_mode: one of `SHIFT_MODES`; decides the range. Defaults to `"symmetric"`.
    """
    check_shift_args(max_shift, shift_mode, per=per)
    low, high = offset_range(max_shift, shift_mode)
    rows = batch_size if per == "image" else 1
    offsets = keras.random.randint((rows, 2), low, high + 1, dtype="int32", seed=seed)
    if per == "batch":
        offsets = ops.broadcast_to(offsets, (batch_size, 2))
    return offsets


def apply_shift(
    images,
    offsets,
    max_shift,
    shift_mode="symmetric",
    padding_mode="zero",
    crop_size=None,
    mode=None,
):
    """Shifts each image by its `(dy, dx)` row of `offsets` (see the module docstring).

    One gather does the whole batch, so per-image offsets cost no more than one shared.
    Offsets outside `offset_range(max_shift, shift_mode)` are not allowed.
    `crop_size` (`"crop"` only): int or `(height, width)` of the windows.
    """
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode)
    shape = ops.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    offsets = ops.cast(offsets, "int32")
    dy = offsets[:, 0][:, None]
    dx = offsets[:, 1][:, None]
    out_h, out_w = height, width
    if shift_mode == "crop":
        out_h, out_w = crop_window(images.shape[1:3], max_shift, crop_size)
        top = (height - out_h - max_shift + 1) // 2  # the region of the windows, centred
        left = (width - out_w - max_shift + 1) // 2
        rows = ops.arange(out_h, dtype="int32")[None, :] + dy + top
        cols = ops.arange(out_w, dtype="int32")[None, :] + dx + left
        source, src_h, src_w = images, height, width
    elif shift_mode == "circular":
        rows = ops.mod(ops.arange(height, dtype="int32")[None, :] - dy, height)
        cols = ops.mod(ops.arange(width, dtype="int32")[None, :] - dx, width)
        source, src_h, src_w = images, height, width
    else:
        pad = {"symmetric": max_shift, "centred": max_shift // 2}.get(shift_mode, max_shift - 1)
        after = 0 if shift_mode == "one_sided" else pad
        source = pad_spatial(images, ((pad, after), (pad, after)), padding_mode)
        rows = ops.arange(height, dtype="int32")[None, :] - dy + pad
        cols = ops.arange(width, dtype="int32")[None, :] - dx + pad
        src_h, src_w = height + pad + after, width + pad + after
    base = ops.arange(batch, dtype="int32")[:, None, None] * (src_h * src_w)
    flat_index = base + rows[:, :, None] * src_w + cols[:, None, :]
    flat = ops.reshape(source, (-1, shape[3]))
    return ops.take(flat, flat_index, axis=0)


def crop_window(spatial, max_shift, crop_size=None):
    """`(height, width)` of the `"crop"` windows of images of size `spatial`."""
    if crop_size is None:
        if spatial[0] is None or spatial[1] is None:
            raise ValueError(
                "`crop_size` must be set when the image size is not static. "
                f"Received: crop_size=None for images of size {tuple(spatial)}"
            )
        crop_size = (spatial[0] - max_shift + 1, spatial[1] - max_shift + 1)
    elif isinstance(crop_size, int) and not isinstance(crop_size, bool):
        crop_size = (crop_size, crop_size)
    if not isinstance(crop_size, (tuple, list)) or len(crop_size) != 2:
        raise ValueError(f"`crop_size` must be an int or (height, width). Received: {crop_size!r}")
    for size, full in zip(crop_size, spatial):
        check_optional_positive_int(size, "crop_size")
        if full is not None and size + max_shift - 1 > full:
            raise ValueError(
                f"`crop_size` + `max_shift` - 1 must fit the image ({full} px): every offset "
                f"in [0, {max_shift}) must give a window inside it. Received: "
                f"crop_size={tuple(crop_size)}, max_shift={max_shift}"
            )
    return tuple(int(s) for s in crop_size)


def shift_views(
    images,
    max_shift=8,
    shift_mode="symmetric",
    padding_mode="zero",
    per="image",
    seed=None,
    crop_size=None,
    mode=None,
):
    """Returns two views of `images` at independent random offsets (module docstring).

    Args:
        images: `[batch, height, width, channels]`.
        max_shift: int >= 1. Defaults to `8`.
        shift_mode: one of `"centred"`, `"symmetric"`, `"one_sided"`, `"crop"`,
            `"circular"`. Defaults to `"symmetric"`. `mode` is accepted as an alias.
        padding_mode: the fill of `"centred"`, `"symmetric"` and `"one_sided"` views, one of
            `"zero"`, `"reflect"`, `"replicate"`, `"circular"`. Defaults to `"zero"`.
        per: `"image"` or `"batch"`. Defaults to `"image"`.
        seed: int, `keras.random.SeedGenerator` or None.
        crop_size: `"crop"` only, the window size. Defaults to `size - max_shift + 1`.
    """
    shift_mode = resolve_shift_mode(shift_mode, mode)
    check_shift_args(max_shift, shift_mode, padding_mode, per)
    batch = ops.shape(images)[0]
    views = []
    for _ in range(2):
        offsets = sample_offsets(batch, max_shift, per, seed, shift_mode)
        views.append(apply_shift(images, offsets, max_shift, shift_mode, padding_mode, crop_size))
    return tuple(views)
