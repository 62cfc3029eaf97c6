"""Rendered glyphs: 36 characters in the fonts matplotlib ships, generated here.

`render_glyphs` draws each of `0-9 A-Z` with Pillow in one of matplotlib's DejaVu and
STIX fonts, at a random scale, rotation and stroke width (outline thickness), 4x
supersampled and box-filtered to `size` pixels: sharp, antialiased strokes with content
up to the Nyquist frequency, so the aliasing of a strided network shows (unlike the
8-px digits upscaled bilinearly). `noise_backgrounds` draws 1/f ("pink") noise, the
power spectrum of natural images; `textured_glyphs` pastes glyphs onto it, so a window
of the image holds texture up to its edges and a shifted window brings new content in
(Cons.m with `shift_mode="crop"`, as on natural images). Source and licences:
`GLYPHS.md`. Every array is a pure function of its seed (for one Pillow/FreeType and
one matplotlib font set).
"""

import functools
import os

import numpy as np

from tfposenc.validation import check_positive_int

CLASSES = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)
SUPERSAMPLE = 4
SCALE = (0.55, 0.95)  # glyph em size, as a fraction of the frame
ROTATION = 20.0  # degrees, uniform in [-ROTATION, ROTATION]
STROKES = (0, 1, 2, 3)  # outline width in supersampled pixels (0 to 3/4 px)


def font_path(name):
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)


@functools.cache
def _font(name, pixels):
    from PIL import ImageFont

    return ImageFont.truetype(font_path(name), pixels)


def draw_glyph(char, font, size, scale=0.8, rotation=0.0, stroke=0):
    """One glyph, white on black, as float32 `[size, size]` in [0, 1].

    Args:
        char: the character.
        font: a file name of `FONTS`.
        size: int, the output side in pixels.
        scale: the font's em size as a fraction of the frame. Defaults to `0.8`.
        rotation: degrees, counter-clockwise, about the frame's centre. Defaults to `0`.
        stroke: outline width in supersampled pixels. Defaults to `0`.
    """
    from PIL import Image, ImageDraw

    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(canvas)
    face = _font(font, max(1, int(round(scale * big))))
    pen.text((big / 2, big / 2), char, fill=255, font=face, anchor="mm", stroke_width=stroke)
    if rotation:
        canvas = canvas.rotate(rotation, resample=Image.Resampling.BICUBIC)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, "float32") / 255.0


def _check(per_class, size, seed):
    check_positive_int(per_class, "per_class")
    check_positive_int(size, "size", minimum=4)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be an int >= 0. Received: seed={seed!r}")


@functools.lru_cache(maxsize=8)
def render_glyphs(per_class, size=16, seed=0):
    """`per_class` glyphs of each of the 36 classes, in a seeded random order.

    Returns `(images float32 [36 * per_class, size, size] in [0, 1], labels int64)`;
    each draw picks a font of `FONTS`, a scale in `SCALE`, a rotation in
    `[-ROTATION, ROTATION]` and a stroke of `STROKES`, all from `seed`. Cached: do
    not modify the arrays.
    """
    _check(per_class, size, seed)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), per_class))
    fonts = rng.integers(0, len(FONTS), len(labels))
    scales = rng.uniform(*SCALE, len(labels))
    rotations = rng.uniform(-ROTATION, ROTATION, len(labels))
    strokes = rng.choice(STROKES, len(labels))
    images = np.stack(
        [
            draw_glyph(CLASSES[c], FONTS[f], size, s, r, int(w))
            for c, f, s, r, w in zip(labels, fonts, scales, rotations, strokes)
        ]
    )
    for array in (images, labels):
        array.flags.writeable = False
    return images, labels.astype("int64")


def noise_backgrounds(count, size, seed=0, exponent=1.0):
    """`count` images of 1/f noise, float32 `[count, size, size]`, each spanning [0, 1].

    White noise filtered to an amplitude spectrum `1 / f**exponent` (power `1 / f**2`
    for the default: the spectrum of natural images), then scaled to [0, 1] per image.
    """
    check_positive_int(count, "count")
    check_positive_int(size, "size", minimum=2)
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    radius[0, 0] = np.inf  # no DC term: the mean is set by the scaling
    spectrum = np.fft.rfft2(rng.normal(size=(count, size, size))) / radius**exponent
    noise = np.fft.irfft2(spectrum, s=(size, size))
    low = noise.min(axis=(1, 2), keepdims=True)
    high = noise.max(axis=(1, 2), keepdims=True)
    return ((noise - low) / (high - low)).astype("float32")


@functools.lru_cache(maxsize=4)
def textured_glyphs(per_class, size=48, glyph_size=16, seed=0):
    """Glyphs of `render_glyphs(per_class, glyph_size, seed)` over 1/f noise.

    The glyph is pasted at the centre of a `size` canvas (plus a random 0..2 px
    offset per axis) over noise scaled to a random range inside [0, 0.7]: the white
    glyph stays brighter than its background. Returns `(images float32
    [N, size, size] in [0, 1], labels int64)`; cached, do not modify.
    """
    _check(per_class, size, seed)
    if not 0 < glyph_size <= size - 2:
        raise ValueError(
            f"`glyph_size` must be in [1, size - 2 = {size - 2}]. Received: glyph_size={glyph_size}"
        )
    glyphs, labels = render_glyphs(per_class, glyph_size, seed)
    rng = np.random.default_rng([seed, 1])
    background = noise_backgrounds(len(labels), size, seed=seed + 10_000)
    low = rng.uniform(0.0, 0.35, (len(labels), 1, 1))
    background = low + background * rng.uniform(0.2, 0.35, (len(labels), 1, 1))
    images = background.astype("float32")
    start = (size - glyph_size) // 2 - 1
    shifts = rng.integers(0, 3, (len(labels), 2))
    for image, glyph, (dy, dx) in zip(images, glyphs, shifts):
        window = image[start + dy : start + dy + glyph_size, start + dx : start + dx + glyph_size]
        window[:] = window * (1 - glyph) + glyph  # the glyph's coverage as alpha, white ink
    images.flags.writeable = False
    return images, labels


def to_pixels(images):
    """float [N, H, W] in [0, 1] -> uint8 [N, H, W, 3] (grey repeated)."""
    return np.repeat(np.round(np.asarray(images) * 255.0).astype("uint8")[..., None], 3, axis=-1)


__all__ = [
    "CLASSES",
    "FONTS",
    "draw_glyph",
    "noise_backgrounds",
    "render_glyphs",
    "textured_glyphs",
    "to_pixels",
]
