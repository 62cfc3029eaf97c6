"""Convert any functional Keras image model to another border mode and to anti-aliased
or polyphase downsampling, with its weights."""

from tfposenc.convert.convert_model import convert_model

__all__ = ["convert_model"]
