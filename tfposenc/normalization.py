"""Pixel statistics shared by the models' input normalisation and the grid canvases.

A dataset's per-channel `mean` and `std` are given in [0, 1] units (as
`tfposenc.data.info(name)` reports them). A model normalises raw pixels as
`(pixels - pixel_mean(mean)) / pixel_std(std)`; a grid canvas fills its empty cells
with `pixel_mean(mean)`. Both use these float32 constants, so an empty cell is exactly
0 after the model's normalisation, as in the authors' protocol.
"""

import numpy as np


def pixel_mean(mean):
    """`mean * 255` as float32 (0 where `mean` is None)."""
    if mean is None:
        return np.zeros((), "float32")
    return (np.asarray(mean, "float64") * 255.0).astype("float32")


def pixel_std(std):
    """`std * 255` as float32 (255 where `std` is None: pixels scaled to [0, 1])."""
    if std is None:
        return np.asarray(255.0, "float32")
    return (np.asarray(std, "float64") * 255.0).astype("float32")


def check_statistics(values, name):
    """`None`, or a tuple of finite floats in [0, 1] units (one per channel; `mean` in
    [0, 1], `std` in (0, 1]). Statistics in pixel units (0..255) are refused: the model
    would divide by 255 twice and train at chance."""
    if values is None:
        return None
    try:
        values = tuple(float(v) for v in np.ravel(np.asarray(values, dtype="float64")))
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a list of per-channel numbers in [0, 1] units or None. "
            f"Received: {name}={values!r}"
        ) from None
    if not values or not all(np.isfinite(values)) or (name == "std" and min(values) <= 0):
        raise ValueError(
            f"`{name}` must be a non-empty list of finite per-channel numbers"
            f"{' > 0' if name == 'std' else ''}. Received: {name}={values!r}"
        )
    low = 0.0 if name == "mean" else None
    if (low is not None and min(values) < low) or max(values) > 1.0:
        hint = " (pixel-unit statistics? divide them by 255)" if max(values) > 1.0 else ""
        raise ValueError(
            f"`{name}` values must be in [0, 1] units, as `tfposenc.data.info` reports "
            f"them{hint}. Received: {name}={values!r}"
        )
    return values
