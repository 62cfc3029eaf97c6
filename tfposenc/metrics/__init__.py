"""Top-1 and per-cell accuracy, shift consistency.

On arrays: `top1_hits`, `top1` and `accuracy_per_cell` (`tfposenc.metrics.accuracy`,
the one home of both computations); as a Keras metric: `PerCellAccuracy`.

The shifted views themselves are augmentation: `tfposenc.augment` (re-exported here for
code written against earlier versions).
"""

from tfposenc.augment import apply_shift, sample_offsets, shift_views
from tfposenc.metrics.accuracy import accuracy_per_cell, top1, top1_hits
from tfposenc.metrics.per_cell_accuracy import PerCellAccuracy

__all__ = [
    "PerCellAccuracy",
    "apply_shift",
    "accuracy_per_cell",
    "consistency_pass",
    "per_image_agreement",
    "sample_offsets",
    "shift_agreement",
    "shift_consistency",
    "shift_views",
    "top1",
    "top1_accuracy",
    "top1_hits",
    "TracedModel",
    "traced",
    "view_offsets",
]


def __getattr__(name):
    # The consistency loop uses TensorFlow (tf.function over a tf.data pipeline); import
    # it lazily so the keras.ops-only pieces stay importable on any backend.
    if name in (
        "consistency_pass",
        "per_image_agreement",
        "shift_agreement",
        "shift_consistency",
        "top1_accuracy",
        "view_offsets",
    ):
        from tfposenc.metrics import consistency

        return getattr(consistency, name)
    if name in ("TracedModel", "traced"):
        from tfposenc.metrics import traced

        return getattr(traced, name)
    raise AttributeError(name)
