"""Encoded images sent as `{"b64": ...}` to a uint8 image input, decoded safely.

The declared size is read from the header (PNG IHDR, GIF logical screen, BMP info
header, JPEG via `tf.image.extract_jpeg_shape`) and checked before anything is decoded:
against the signature's static height and width when it has them, and against a pixel
cap, so a small request declaring a huge image costs nothing.
"""

import struct

import tensorflow as tf

from serving.errors import invalid_argument

MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGES_PER_REQUEST = 1024


def declared_size(data):
    """`(height, width)` from an image's header; raises `ValueError` if not an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return height, width
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(height), abs(width)
    if data.startswith(b"\xff\xd8"):
        try:
            height, width, _ = tf.image.extract_jpeg_shape(data).numpy().tolist()
        except (tf.errors.InvalidArgumentError, ValueError):
            raise ValueError("not a valid JPEG header") from None
        return height, width
    raise ValueError("not a PNG/JPEG/BMP/GIF image")


def _first_gif_frame(data):
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def decode_image(data, spec, input_name, max_pixels=MAX_IMAGE_PIXELS):
    """Decodes an encoded image for the uint8 input `spec` to a `[H, W, 3]` array."""
    try:
        height, width = declared_size(data)
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
    try:
        if data[:3] == b"GIF":  # TensorFlow would decode every frame, then keep the first
            image = _first_gif_frame(data)
        else:
            image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except (tf.errors.OpError, ValueError, OSError):
        raise invalid_argument(
            f"input '{input_name}': b64 value is not a valid PNG/JPEG/BMP/GIF image"
        ) from None
    if tuple(image.shape[:2]) != (height, width):
        raise invalid_argument(
            f"input '{input_name}': image decodes to {tuple(image.shape[:2])}, its header says "
            f"{(height, width)}"
        )
    return image
