"""Augmentation: randomly shifted views (AugShift's input, and shift consistency's)."""

from tfposenc.augment.shift import (
    SHIFT_MODES,
    SHIFT_PER,
    apply_shift,
    check_shift_args,
    crop_window,
    offset_range,
    sample_offsets,
    shift_views,
)

__all__ = [
    "SHIFT_MODES",
    "SHIFT_PER",
    "apply_shift",
    "check_shift_args",
    "crop_window",
    "offset_range",
    "sample_offsets",
    "shift_views",
]
