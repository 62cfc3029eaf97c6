"""Shifted views and the shift-consistency metric."""

from tfposenc.metrics.shift import apply_shift, sample_offsets, shift_views

__all__ = ["apply_shift", "sample_offsets", "shift_views"]
