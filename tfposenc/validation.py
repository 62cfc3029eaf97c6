"""Argument checks shared by every layer, model, metric, data function and trainer.

Each check raises `ValueError` in the Keras template, naming the argument, what it must
be and what was received ("`width` must be a positive int. Received: width=0"), and
returns the (normalised) value so it can be used inline in `__init__`.
"""

import math
import numbers
import os

import keras

DATA_FORMATS = ("channels_last", "channels_first")
SWITCH_OFF_VALUES = ("0", "false", "no", "off")


def env_switch(name):
    """Whether the on-by-default switch in environment variable `name` is on: it is off
    only for "0", "false", "no" or "off" (any case, surrounding spaces ignored)."""
    return os.environ.get(name, "1").strip().lower() not in SWITCH_OFF_VALUES


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_choice(value, allowed, name):
    """Returns `value` if it is one of `allowed`."""
    if not isinstance(value, (str, int, float, type(None))) or value not in allowed:
        raise ValueError(f"`{name}` must be one of {tuple(allowed)}. Received: {name}={value!r}")
    return value


def check_choices(values, allowed, name):
    """Returns `tuple(values)` if it is a non-empty sequence of members of `allowed`."""
    if isinstance(values, str) or not isinstance(values, (tuple, list)) or not values:
        raise ValueError(
            f"`{name}` must be a non-empty list of {tuple(allowed)}. Received: {name}={values!r}"
        )
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(
            f"`{name}` must hold only {tuple(allowed)}; {bad!r} is not allowed. "
            f"Received: {name}={values!r}"
        )
    return tuple(values)


def check_positive_int(value, name, minimum=1):
    """Returns `int(value)` if it is an int (not a bool) >= `minimum`."""
    if not _is_int(value) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")
    return int(value)


def check_optional_positive_int(value, name, minimum=1):
    """Like `check_positive_int`, but `None` passes through."""
    return None if value is None else check_positive_int(value, name, minimum)


def check_number(value, name, minimum=None, maximum=None, finite=True, inclusive=True):
    """Returns `float(value)` if it is a real number (finite unless `finite=False`)
    within `[minimum, maximum]` (or the open interval when `inclusive=False`)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    low_ok = minimum is None or (value >= minimum if inclusive else value > minimum)
    high_ok = maximum is None or (value <= maximum if inclusive else value < maximum)
    if not (low_ok and high_ok):
        left, right = ("[", "]") if inclusive else ("(", ")")
        interval = f"{left}{'-inf' if minimum is None else minimum}, "
        interval += f"{'inf' if maximum is None else maximum}{right}"
        raise ValueError(f"`{name}` must be in {interval}. Received: {name}={value!r}")
    return value


def normalize_data_format(data_format):
    """Returns `"channels_last"` or `"channels_first"` (`None`: Keras' global setting)."""
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"`data_format` must be one of {DATA_FORMATS}. Received: data_format={data_format!r}"
        )
    return data_format


def spatial_axes(data_format, rank=4):
    """The spatial axes of a `rank`-D image tensor in `data_format`."""
    return tuple(range(1, rank - 1)) if data_format == "channels_last" else tuple(range(2, rank))


def channel_axis(data_format, rank=4):
    """The channel axis of a `rank`-D tensor (the last one for rank 2)."""
    return rank - 1 if rank == 2 or data_format == "channels_last" else 1


def spatial_shape(shape, data_format):
    """`(height, width)` of a 4D shape in `data_format` (entries may be None)."""
    h, w = spatial_axes(data_format, len(shape))
    return (shape[h], shape[w])


def check_input_shape(input_shape, name="input_shape"):
    """`(height, width, channels)` with known channels; height and width may be None."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not _is_int(shape[-1]):
        raise ValueError(
            f"`{name}` must be (height, width, channels) with known channels; height and "
            f"width may be None. Received: {name}={input_shape!r}"
        )
    return shape


__all__ = [
    "DATA_FORMATS",
    "channel_axis",
    "check_choice",
    "check_choices",
    "check_input_shape",
    "check_number",
    "check_optional_positive_int",
    "check_positive_int",
    "env_switch",
    "normalize_data_format",
    "spatial_axes",
    "spatial_shape",
]
