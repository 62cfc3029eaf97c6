"""The keras.applications models the converter tests use, built once per session."""

import functools

import keras

SIZE = 64
ARCHITECTURES = ("ResNet50", "ResNet50V2", "MobileNetV2", "EfficientNetB0", "VGG16", "DenseNet121")


@functools.cache
def application(name, size=SIZE):
    """`keras.applications.<name>` without weights or top, global average pooled."""
    kwargs = {"alpha": 0.35} if name == "MobileNetV2" else {}
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, name)(
        weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3), **kwargs
    )
