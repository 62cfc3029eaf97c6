"""Ranking the channels of a trained task by how much they encode position."""

import warnings

import numpy as np

from tfposenc.analysis._batches import iterate_batches, pooled, with_pooled_features
from tfposenc.validation import check_choice
from tfposenc.vocabulary import RANKING_METHODS


def rank_position_channels(model, dataset, method="flip"):
    """Ranks the pooled backbone channels of `model` by position information.

    Every image goes through `model.pooled_features(images, training=False)` (inference
    mode; after the model's current ablation), giving `z1`; for the flip methods its
    left-right mirror image gives `z2`. Per channel `c`:

    - `"flip"` (the authors' attack): mean over images of `|z1[c] - z2[c]|`.
    - `"flip_left"`: mean of `z1[c] - z2[c]` (signed: channels stronger on the images as
      they are than on their mirror images).
    - `"flip_right"`: mean of `z2[c] - z1[c]`.
    - `"flip_2d"`: the mean of `|z1[c] - z2[c]|` and `|z1[c] - z3[c]|`, `z3` from the
      up-down mirror image. A left-right flip maps a centre-column cell to itself, so
      `"flip"` never sees channels that code the row; this one does (an up-down flip
      also turns the content upside down unless the model trained with vertical flips;
      `"label"` is the clean row-and-column ranking for grid tasks).
    - `"label"` (beyond the paper, for grid tasks whose label is the cell): the
      between-cell share of the channel's variance over canvases,
      `sum_g n_g (mean_g - mean)^2 / sum_i (z_i - mean)^2` (eta squared, in [0, 1];
      0 for a constant channel). Needs one integer label per image.
    - `"magnitude"` (a control, not a position measure): mean over images of `|z1[c]|`.
      A flip score grows with the channel's size as well as with its asymmetry; removing
      the largest channels is the control that tells the two apart.

    Rank on data that is not the evaluation split (e.g. training canvases). When every
    channel gets the same score (e.g. constant images: every flip score is 0) the
    order is only the channel index: a `UserWarning` says so.

    Args:
        model: a tfposenc `Task` (anything with `pooled_features(images, training)`),
            a `Backbone`, or a functional Keras model (its last 4D output, globally
            averaged; see `Backbone.from_model`), channels_last.
        dataset: a `tf.data.Dataset` of images or `(images, labels)` (batched or not),
            an iterable of such batches, or a numpy array of images.
        method: string, one of `RANKING_METHODS`. Defaults to `"flip"`.

    Returns:
        `(order, scores)`: `order`, int64 `[C]`, the channels by descending score (ties
        by channel index); `scores`, float64 `[C]`, the score of each channel, indexed
        by channel.
    """
    check_choice(method, RANKING_METHODS, "method")
    model = with_pooled_features(model)
    if method == "label":
        scores = _label_scores(model, dataset)
    elif method == "magnitude":
        scores = _magnitude_scores(model, dataset)
    else:
        scores = _flip_scores(model, dataset, method)
    if scores.size > 1 and np.all(scores == scores[0]):
        warnings.warn(
            f"rank_position_channels: every channel's {method!r} score is {float(scores[0])!r}, so "
            "the ranking is only the channel order and means nothing (constant images give "
            "all-zero flip scores); rank on real images.",
            UserWarning,
            stacklevel=2,
        )
    order = np.argsort(-scores, kind="stable").astype("int64")
    return order, scores


def _mean_over_images(per_image):
    """The mean over all images of per-image channel scores, given as `[B, C]` batches."""
    total, count = None, 0
    for scores in per_image:
        batch_sum = scores.sum(axis=0)
        total = batch_sum if total is None else total + batch_sum
        count += len(scores)
    if count == 0:
        raise ValueError("`dataset` must hold at least one image. Received: an empty dataset")
    return total / count


def _flip_scores(model, dataset, method):
    def differences():
        for images, _, _ in iterate_batches(dataset):
            features = pooled(model, images)
            mirrored = np.ascontiguousarray(images[:, :, ::-1])
            difference = features - pooled(model, mirrored)
            if method == "flip_2d":
                upside_down = np.ascontiguousarray(images[:, ::-1])
                rows = np.abs(features - pooled(model, upside_down))
                difference = (np.abs(difference) + rows) / 2
            elif method == "flip":
                difference = np.abs(difference)
            elif method == "flip_right":
                difference = -difference
            yield difference

    return _mean_over_images(differences())


def _magnitude_scores(model, dataset):
    batches = iterate_batches(dataset)
    return _mean_over_images(np.abs(pooled(model, images)) for images, _, _ in batches)


def spearman(first, second):
    """Spearman's rank correlation of two score vectors (average ranks for ties; NaN
    when either is constant), e.g. the flip scores against the channel magnitudes."""
    first, second = np.asarray(first, "float64"), np.asarray(second, "float64")
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(
            "`first` and `second` must be 1-D score vectors of one length. "
            f"Received: shapes {first.shape} and {second.shape}"
        )
    ranks = [_average_ranks(v) for v in (first, second)]
    centred = [r - r.mean() for r in ranks]
    norm = np.sqrt((centred[0] ** 2).sum() * (centred[1] ** 2).sum())
    return float((centred[0] * centred[1]).sum() / norm) if norm > 0 else float("nan")


def _average_ranks(values):
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype="float64")
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _label_scores(model, dataset):
    features, labels = [], []
    for images, batch_labels, _ in iterate_batches(dataset):
        if batch_labels is None or batch_labels.ndim != 1:
            shape = None if batch_labels is None else batch_labels.shape
            raise ValueError(
                '`method="label"` needs one integer label (the cell) per image. '
                f"Received: labels of shape {shape}"
            )
        features.append(pooled(model, images))
        labels.append(batch_labels.astype("int64"))
    if not features:
        raise ValueError("`dataset` must hold at least one image. Received: an empty dataset")
    features, labels = np.concatenate(features), np.concatenate(labels)
    centred = features - features.mean(axis=0)
    total = (centred**2).sum(axis=0)
    between = np.zeros_like(total)
    for label in np.unique(labels):
        group = centred[labels == label]
        between += len(group) * group.mean(axis=0) ** 2
    scale = np.maximum(np.abs(features).max(axis=0), 1e-30) ** 2 * len(features)
    constant = total <= 1e-12 * scale
    return np.where(constant, 0.0, between / np.where(constant, 1.0, total))
