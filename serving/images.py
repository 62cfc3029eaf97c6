"""Encoded images sent as `{"b64": ...}` to a uint8 image input, decoded within bounds.

Nothing is decoded before its decoded size is known and checked: the size comes from
the format's own structure (PNG IHDR, the first GIF frame's descriptor, BMP info header,
JPEG via `tf.image.extract_jpeg_shape`) and must match the signature's static height and
width when it has them, stay within `max_pixels` per image and, over a request, within
the pixel budget of `ImageBudget`. Formats whose data could decode to more than the
header says are bounded too:

- PNG: the image data stream is inflated (and discarded) up to the size the header
  declares before the decoder sees it; a stream that inflates further is refused, and
  only the chunks the pixels need (IHDR, PLTE, tRNS, IDAT, IEND) reach the decoder, so
  compressed text or colour-profile chunks are never inflated.
- JPEG: pixels x scans (start-of-scan markers) within `max_decode_pixels`: a
  progressive JPEG is decoded in one pass over the image per scan.
- GIF: only the first frame is decoded (TensorFlow would decode every frame), and it
  must lie within the logical screen (Pillow grows the canvas to the frame otherwise).
"""

import io
import struct
import zlib

import numpy as np
import tensorflow as tf

from serving.errors import invalid_argument

MAX_IMAGE_PIXELS = 4096 * 4096
MAX_REQUEST_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGES_PER_REQUEST = 1024
MAX_IMAGE_DECODE_PIXELS = 64 * 4096 * 4096  # pixels x scans of one progressive JPEG
MAX_PNG_CHUNKS = 100_000
MAX_GIF_BLOCKS = 65_536
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2)]
_ADAM7 += [(0, 1, 1, 2)]  # (x start, y start, x step, y step) of the seven passes


class ImageBudget:
    """Per-request caps on encoded images: their count, pixels each and pixels in all.

    Args:
        max_images: int. Encoded images per request. Defaults to 1024.
        max_pixels: int. Pixels of one image. Defaults to 4096 * 4096.
        max_request_pixels: int. Pixels of all images of a request (16 bytes each in
            flight: 3 decoded, 12 as float32). Defaults to 4096 * 4096.
        max_decode_pixels: int. Pixels x scans of one JPEG: a progressive JPEG is
            decoded in one pass over the image per scan (20,000 scans of 4096x4096
            took 35 s of CPU). Defaults to 64 * 4096 * 4096.
    """

    def __init__(
        self,
        max_images=MAX_IMAGES_PER_REQUEST,
        max_pixels=MAX_IMAGE_PIXELS,
        max_request_pixels=MAX_REQUEST_IMAGE_PIXELS,
        max_decode_pixels=MAX_IMAGE_DECODE_PIXELS,
    ):
        self.max_images = max_images
        self.max_pixels = max_pixels
        self.max_request_pixels = max_request_pixels
        self.max_decode_pixels = max_decode_pixels


def _png_raw_bytes(height, width, bit_depth, colour_type, interlaced):
    """Bytes of the filtered scanlines a PNG's header declares (what IDAT inflates to)."""
    bits = _PNG_CHANNELS[colour_type] * bit_depth
    if not interlaced:
        return height * (1 + (width * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if w and h:
            total += h * (1 + (w * bits + 7) // 8)
    return total


def _png(data):
    """`(height, width, png)`: the PNG's declared size and a copy holding only the
    chunks the pixels need, once its image data is known to inflate to that size."""
    position, kept, idat, header = 8, [_PNG_SIGNATURE], [], None
    for _ in range(MAX_PNG_CHUNKS):
        if position + 12 > len(data):
            raise ValueError("a truncated PNG")
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data):
            raise ValueError("a truncated PNG")
        if header is None and kind != b"IHDR":
            raise ValueError("a PNG without IHDR first")
        if kind == b"IHDR":
            if length != 13:
                raise ValueError("a PNG with an invalid IHDR")
            header = struct.unpack(">IIBBBBB", data[position + 8 : position + 21])
        if kind == b"IDAT":
            idat.append(data[position + 8 : position + 8 + length])
        if kind in _PNG_KEPT:
            kept.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    else:
        raise ValueError(f"a PNG of more than {MAX_PNG_CHUNKS} chunks")
    width, height, bit_depth, colour_type, _, _, interlace = header
    if colour_type not in _PNG_CHANNELS or bit_depth not in (1, 2, 4, 8, 16):
        raise ValueError("a PNG of an invalid colour type or bit depth")
    return height, width, (bit_depth, colour_type, interlace), b"".join(idat), b"".join(kept)


def _check_png_stream(height, width, format_, stream):
    """Inflates `stream` (discarding the output) as far as the header allows."""
    expected = _png_raw_bytes(height, width, format_[0], format_[1], format_[2] == 1)
    inflater, produced, rest = zlib.decompressobj(), 0, stream
    try:
        while rest and not inflater.eof:
            produced += len(inflater.decompress(rest, 1 << 20))
            if produced > expected:
                raise ValueError(
                    f"a PNG whose image data inflates past the {expected} bytes its "
                    f"{height}x{width} header declares"
                )
            rest = inflater.unconsumed_tail
    except zlib.error:
        raise ValueError("a PNG with corrupt image data") from None


def _gif(data):
    """`(height, width)` of a GIF's first frame, which must lie within its screen."""
    if len(data) < 13:
        raise ValueError("a truncated GIF")
    screen_w, screen_h, packed = struct.unpack("<HHB", data[6:11])
    position, blocks = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0), 0
    while position < len(data):
        block = data[position]
        if block == 0x2C:  # image descriptor
            if position + 10 > len(data):
                raise ValueError("a truncated GIF")
            left, top, width, height = struct.unpack("<HHHH", data[position + 1 : position + 9])
            if left + width > screen_w or top + height > screen_h:
                raise ValueError(
                    f"a GIF whose first frame ({width}x{height} at {left},{top}) exceeds "
                    f"its {screen_w}x{screen_h} screen"
                )
            return screen_h, screen_w
        if block != 0x21:  # only extensions may precede the first image
            break
        position += 2
        while position < len(data) and data[position]:  # the extension's sub-blocks
            position += 1 + data[position]
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                raise ValueError(f"a GIF of more than {MAX_GIF_BLOCKS} blocks before its image")
        position += 1
    raise ValueError("a GIF without an image")


def inspect(data):
    """`(height, width, data to decode)` of an encoded image, from its structure alone;
    raises `ValueError` saying why if it is not a PNG/JPEG/BMP/GIF image within bounds."""
    if data.startswith(_PNG_SIGNATURE):
        height, width, format_, stream, kept = _png(data)

        def checked():
            _check_png_stream(height, width, format_, stream)
            return kept

        return height, width, checked
    if data[:6] in (b"GIF87a", b"GIF89a"):
        height, width = _gif(data)
        return height, width, lambda: data
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(height), abs(width), lambda: data
    if data.startswith(b"\xff\xd8"):
        try:
            height, width, _ = tf.image.extract_jpeg_shape(data).numpy().tolist()
        except (tf.errors.InvalidArgumentError, ValueError):
            raise ValueError("not a valid JPEG header") from None
        return height, width, lambda: data
    raise ValueError("not a PNG/JPEG/BMP/GIF image")


def _first_gif_frame(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


class EncodedImage:
    """An encoded image whose decoded size is known and checked; `decode()` decodes it."""

    def __init__(self, height, width, prepare, input_name):
        self.height, self.width = height, width
        self.pixels = height * width
        self._prepare = prepare
        self._input_name = input_name

    def decode(self):
        """The `[H, W, 3]` uint8 pixels."""
        name = self._input_name
        try:
            data = self._prepare()
        except ValueError as error:
            raise invalid_argument(f"input '{name}': b64 value is {error}") from None
        try:
            if data[:3] == b"GIF":  # TensorFlow would decode every frame, then keep the first
                image = _first_gif_frame(data)
            else:
                image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        except (tf.errors.OpError, ValueError, OSError):
            raise invalid_argument(
                f"input '{name}': b64 value is not a valid PNG/JPEG/BMP/GIF image"
            ) from None
        if tuple(image.shape[:2]) != (self.height, self.width):
            raise invalid_argument(
                f"input '{name}': image decodes to {tuple(image.shape[:2])}, its header says "
                f"{(self.height, self.width)}"
            )
        return image


def jpeg_scans(data):
    """Scans of a JPEG: its start-of-scan markers (0xFFDA; entropy-coded data stuffs a
    zero after every 0xFF byte, so the pair appears only as a marker, or in an embedded
    thumbnail, which then counts too)."""
    return data.count(b"\xff\xda")


def check_image(
    data,
    spec,
    input_name,
    max_pixels=MAX_IMAGE_PIXELS,
    max_decode_pixels=MAX_IMAGE_DECODE_PIXELS,
):
    """An `EncodedImage` for the uint8 input `spec`, its size checked against the
    signature and `max_pixels`, a JPEG's pixels x scans against `max_decode_pixels`;
    nothing is decoded yet."""
    try:
        height, width, prepare = inspect(data)
    except ValueError as error:
        raise invalid_argument(f"input '{input_name}': b64 value is {error}") from None
    shape = spec.shape.as_list() if spec.shape.rank is not None else []
    expected = shape[-3:-1] if len(shape) >= 3 else [None, None]
    if any(e is not None and e != d for e, d in zip(expected, (height, width))):
        raise invalid_argument(
            f"input '{input_name}': image is {height}x{width} pixels, the signature expects "
            f"{expected[0]}x{expected[1]}"
        )
    if height * width > max_pixels or height == 0 or width == 0:
        raise invalid_argument(
            f"input '{input_name}': image of {height}x{width} pixels is empty or above the "
            f"limit of {max_pixels} pixels"
        )
    if data.startswith(b"\xff\xd8"):
        scans = jpeg_scans(data)
        if height * width * scans > max_decode_pixels:
            raise invalid_argument(
                f"input '{input_name}': JPEG of {height}x{width} pixels in {scans} scans "
                f"needs {height * width * scans} pixel passes to decode, above the limit of "
                f"{max_decode_pixels} (--max_image_decode_pixels)"
            )
    return EncodedImage(height, width, prepare, input_name)


def decode_image(data, spec, input_name, max_pixels=MAX_IMAGE_PIXELS):
    """Decodes an encoded image for the uint8 input `spec` to a `[H, W, 3]` array."""
    return check_image(data, spec, input_name, max_pixels).decode()
