"""How much each stage's feature map depends on the border: a constant input's response."""

import numpy as np

from tfposenc.analysis.feature_maps import feature_maps
from tfposenc.analysis.regions import ring_mask


def border_artifact_scores(model_or_backbone, input_shape=(64, 64, 3), value=1.0, stages=None):
    """Scores the border artifacts of every stage on one constant input image.

    A constant image carries no position information, so any spatial structure in a
    feature map comes from the borders (padding). Per stage, over its channels:

    - `constant_input_std`: the spatial standard deviation of each channel, averaged
      over channels (`constant_input_std_max`: the largest). Zero for circular padding
      with stride-2 or blur downsampling.
    - `border_contrast`: the mean over channels of `|mean(outer ring) - mean(interior)|`
      (the ring is the outermost row and column on every side), divided by the mean over
      channels of `mean |activation|` (scale free; 0 when every activation is 0; NaN for
      a map without an interior, smaller than 3x3).

    Args:
        model_or_backbone: a `tfposenc.models.Backbone` or a task over one.
        input_shape: `(height, width, channels)` of the constant image. Defaults to
            `(64, 64, 3)`.
        value: float, the constant pixel value, in the input space of
            `model_or_backbone` (raw pixels for a task that normalises them).
            Defaults to `1.0`.
        stages: list of stage names; None for all. Defaults to `None`.

    Returns:
        A list of `{"stage", "constant_input_std", "constant_input_std_max",
        "border_contrast"}` dicts, one per stage in order.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            "`input_shape` must be (height, width, channels) positive ints. "
            f"Received: input_shape={input_shape!r}"
        )
    images = np.full((1, *shape), value, dtype="float32")
    scores = []
    for stage, maps in feature_maps(model_or_backbone, images, stages).items():
        maps = maps[0].astype("float64")
        height, width, channels = maps.shape
        flat = maps.reshape(-1, channels)
        spread = flat.std(axis=0)
        if height < 3 or width < 3:
            contrast = float("nan")
        else:
            ring = ring_mask(height, width).reshape(-1)
            gap = np.abs(flat[ring].mean(axis=0) - flat[~ring].mean(axis=0)).mean()
            scale = np.abs(flat).mean()
            contrast = float(gap / scale) if scale > 0 else 0.0
        scores.append(
            {
                "stage": stage,
                "constant_input_std": float(spread.mean()),
                "constant_input_std_max": float(spread.max()),
                "border_contrast": contrast,
            }
        )
    return scores
