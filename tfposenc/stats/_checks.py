"""Argument checks and the verdict vocabulary shared by `tfposenc.stats` (numpy only).

Every check raises `ValueError` in the Keras template, naming the argument and echoing
what was received, and returns the normalised value.
"""

import numbers

import numpy as np

SHOWN, NOT_SHOWN, INCONCLUSIVE = "shown", "not shown", "inconclusive"
VERDICTS = (SHOWN, NOT_SHOWN, INCONCLUSIVE)
ALTERNATIVES = ("less", "greater")


def check_level(level, name="level"):
    """`float(level)` if it is a number strictly between 0 and 1."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"`{name}` must be a number in (0, 1). Received: {name}={level!r}")
    return float(level)


def check_alternative(alternative):
    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"`alternative` must be one of {ALTERNATIVES}. Received: alternative={alternative!r}"
        )
    return alternative


def check_finite(values, name, min_ndim=0):
    """`values` as a float64 array, if every entry is a finite number."""
    try:
        array = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be finite numbers. Received: {name}={values!r}") from None
    if array.ndim < min_ndim or not np.all(np.isfinite(array)):
        what = (
            "finite numbers"
            if not min_ndim
            else f"an array of >= {min_ndim} dims of finite numbers"
        )
        raise ValueError(f"`{name}` must be {what}. Received: {name}={values!r}")
    return array


def check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def verdict_of(shown, not_shown):
    """Element-wise verdicts from two boolean arrays (`shown` wins; neither: inconclusive)."""
    shown, not_shown = np.asarray(shown, bool), np.asarray(not_shown, bool)
    out = np.where(shown, SHOWN, np.where(not_shown, NOT_SHOWN, INCONCLUSIVE))
    return out.item() if out.ndim == 0 else out
