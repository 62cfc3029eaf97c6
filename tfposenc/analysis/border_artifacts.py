"""How much each stage's feature map depends on the border: a constant input's response,
and the per-position mean response to random inputs."""

import numpy as np

from tfposenc.analysis.feature_maps import feature_maps
from tfposenc.analysis.regions import ring_mask
from tfposenc.validation import check_positive_int


def _check_shape(input_shape):
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            "`input_shape` must be (height, width, channels) positive ints. "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def _random_images(random_inputs, shape, noise_range, seed):
    if random_inputs is None:
        return None
    if isinstance(random_inputs, (int, np.integer)) and not isinstance(random_inputs, bool):
        check_positive_int(int(random_inputs), "random_inputs", minimum=2)
        low, high = noise_range
        rng = np.random.default_rng(seed)
        return rng.uniform(low, high, size=(int(random_inputs), *shape)).astype("float32")
    images = np.asarray(random_inputs, dtype="float32")
    if images.ndim != 4 or images.shape[1:] != shape or len(images) < 2:
        raise ValueError(
            f"`random_inputs` must be an int >= 2 or at least 2 images of shape {shape}. "
            f"Received: an array of shape {images.shape}"
        )
    return images


def border_artifact_scores(
    model_or_backbone,
    input_shape=(64, 64, 3),
    value=1.0,
    stages=None,
    random_inputs=None,
    noise_range=(0.0, 255.0),
    seed=0,
):
    """Scores the border artifacts of every stage on a constant input and on random ones.

    A constant image carries no position information, so any spatial structure in a
    feature map comes from the borders (padding). Per stage, over its channels:

    - `constant_input_std`: the spatial standard deviation of each channel, averaged
      over channels (`constant_input_std_max`: the largest). Zero for circular padding
      with stride-2 or blur downsampling.
    - `border_contrast`: the mean over channels of `|mean(outer ring) - mean(interior)|`
      (the ring is the outermost row and column on every side), divided by the mean over
      channels of `mean |activation|` (scale free; 0 when every activation is 0; NaN for
      a map without an interior, smaller than 3x3).

    Reflect and replicate padding keep a constant input constant, so both scores are 0
    for them by construction, borders or not. With `random_inputs`, the same ring
    contrast is measured on the *per-position mean* of the feature maps over random
    images (i.i.d. pixels have no preferred position either, but a border changes what a
    receptive field sees: duplicated pixels under reflect / replicate, zeros under zero
    padding, the other side under circular padding):

    - `random_border_gap`: mean over channels of `|mean_b(ring_b - interior_b)|`, where
      `ring_b - interior_b` is the ring-minus-interior difference of channel `c` on
      image `b`, divided by the mean `|activation|` over the random images.
    - `random_border_gap_se`: the same average of each channel's sampling error,
      `std_b(ring_b - interior_b) / sqrt(n)` (same scale). For circular padding every
      position is alike, so the gap is sampling noise: about 0.8 of this on average.

    Args:
        model_or_backbone: a `tfposenc.models.Backbone` or a task over one.
        input_shape: `(height, width, channels)` of the images. Defaults to
            `(64, 64, 3)`.
        value: float, the constant pixel value, in the input space of
            `model_or_backbone` (raw pixels for a task that normalises them).
            Defaults to `1.0`.
        stages: list of stage names; None for all. Defaults to `None`.
        random_inputs: None, an int `n >= 2` (that many images of i.i.d. uniform noise
            in `noise_range`) or an array of images `[n, *input_shape]` (e.g. shuffled
            canvases). Defaults to `None` (no random-input scores).
        noise_range: `(low, high)` of the noise pixels. Defaults to `(0, 255)`.
        seed: int, seeds the noise. Defaults to `0`.

    Returns:
        A list of `{"stage", "constant_input_std", "constant_input_std_max",
        "border_contrast"}` dicts (with `random_inputs`, also `random_border_gap`,
        `random_border_gap_se` and `random_inputs`, the number of images), one per stage
        in order.
    """
    shape = _check_shape(input_shape)
    randoms = _random_images(random_inputs, shape, noise_range, seed)
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
    if randoms is not None:
        for score, maps in zip(scores, feature_maps(model_or_backbone, randoms, stages).values()):
            score.update(random_border_scores(maps), random_inputs=len(randoms))
    return scores


def random_border_scores(maps):
    """`{"random_border_gap", "random_border_gap_se"}` of feature maps `[n, h, w, C]` of
    `n` random inputs (see `border_artifact_scores`); NaN below 3x3, 0 for all-zero maps."""
    maps = np.asarray(maps, dtype="float64")
    count, height, width, channels = maps.shape
    if height < 3 or width < 3:
        return {"random_border_gap": float("nan"), "random_border_gap_se": float("nan")}
    flat = maps.reshape(count, -1, channels)
    ring = ring_mask(height, width).reshape(-1)
    differences = flat[:, ring].mean(axis=1) - flat[:, ~ring].mean(axis=1)  # [n, C]
    scale = np.abs(flat).mean()
    if scale == 0:
        return {"random_border_gap": 0.0, "random_border_gap_se": 0.0}
    gap = np.abs(differences.mean(axis=0)).mean()
    error = (differences.std(axis=0, ddof=1) / np.sqrt(count)).mean()
    return {"random_border_gap": float(gap / scale), "random_border_gap_se": float(error / scale)}
