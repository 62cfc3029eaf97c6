"""Per-image `tf.data` maps that fit a source's images to a network's input.

`on_black_canvas` is the shift-invariance experiment's exactness setting: content
resized to `content_size` and centred on a black `image_size` canvas. With a margin
wider than the shift, a shift with black fill moves no content out of the frame, so it
equals a circular shift, and APS (exactly invariant to circular shifts) must score
100.0 on Cons.8. `centre_crop` cuts the centred window of a larger image (the plain,
unshifted view of a `"crop"`-mode source such as `"textured_glyphs"`).
"""

import tensorflow as tf

from tfposenc.validation import check_positive_int


def on_black_canvas(content_size, image_size):
    """Returns a map `(image, label) -> (float32 canvas, label)`.

    The image (uint8 or float, `[H, W, C]`, pixel units) is resized bilinearly to
    `content_size` (unless it has that size already), rounded and clipped to 0..255,
    and pasted at the centre of a black `image_size` canvas (offset
    `(image_size - content_size) // 2`).
    """
    check_positive_int(content_size, "content_size")
    check_positive_int(image_size, "image_size")
    if content_size > image_size:
        raise ValueError(
            f"`content_size` must be <= image_size={image_size}. "
            f"Received: content_size={content_size}"
        )
    edge = (image_size - content_size) // 2

    def fit(image, label):
        image = tf.cast(image, tf.float32)
        if image.shape[0] != content_size or image.shape[1] != content_size:
            image = tf.image.resize(image, (content_size, content_size))
            image = tf.clip_by_value(tf.round(image), 0.0, 255.0)
        return tf.image.pad_to_bounding_box(image, edge, edge, image_size, image_size), label

    return fit


def centre_crop(size):
    """Returns a map `(image, label) -> (the centred size x size window, label)`."""
    check_positive_int(size, "size")

    def cut(image, label):
        return tf.image.resize_with_crop_or_pad(image, size, size), label

    return cut


__all__ = ["centre_crop", "on_black_canvas"]
