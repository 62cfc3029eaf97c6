"""Channel scores and channel removal on pooled features held as arrays.

What `rank_position_channels(method="label")` and an ablation sweep compute, for callers
that already hold the globally pooled channels `[N, C]` (e.g. the position probe, which
extracts them once): no model is run here.
"""

import numpy as np

from tfposenc.analysis.ablation_sweep import _check_fractions, _check_order, count_for


def label_scores(features, labels):
    """Each channel's between-label share of variance (eta squared, in [0, 1]).

    `sum_g n_g (mean_g - mean)^2 / sum_i (z_i - mean)^2` over the rows of `features`
    grouped by `labels`; 0 for a constant channel.

    Args:
        features: float `[N, C]` pooled channels, N >= 1.
        labels: integer `[N]`, one label (e.g. the grid cell) per row.

    Returns:
        float64 `[C]`, the score of each channel.
    """
    features = np.asarray(features, "float64")
    labels = np.asarray(labels)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(
            "`features` must be [N, C] pooled channels with N >= 1. "
            f"Received: features of shape {features.shape}"
        )
    if labels.shape != (features.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels` must hold one integer label per row of `features`. "
            f"Received: labels of shape {labels.shape} and dtype {labels.dtype} for "
            f"{features.shape[0]} rows"
        )
    centred = features - features.mean(axis=0)
    total = (centred**2).sum(axis=0)
    between = np.zeros_like(total)
    for label in np.unique(labels):
        group = centred[labels == label]
        between += len(group) * group.mean(axis=0) ** 2
    scale = np.maximum(np.abs(features).max(axis=0), 1e-30) ** 2 * len(features)
    constant = total <= 1e-12 * scale
    return np.where(constant, 0.0, between / np.where(constant, 1.0, total))


def order_by_score(scores):
    """The channels by descending score, ties by channel index (int64 `[C]`)."""
    return np.argsort(-np.asarray(scores, "float64"), kind="stable").astype("int64")


def ablation_curve(features, order, fractions, score):
    """`score` of `features` with the top-ranked channels zeroed, fraction by fraction.

    For each fraction `f` (sorted, 0 added), the first `count_for(f, C)` channels of
    `order` are set to 0 in every row (no retraining) and `score(features)` is called.
    `halving_fraction` is the first fraction above 0 whose score is at most half the
    score with every channel (None if none reaches it).

    Args:
        features: float `[N, C]` pooled channels.
        order: a permutation of `0..C-1`, the channels by descending rank.
        fractions: numbers in [0, 1].
        score: callable, `[N, C]` array -> float.

    Returns:
        `(curve, halving_fraction)`: `curve` is a list of `{"fraction",
        "num_channels", "score"}` dicts in increasing fraction.
    """
    features = np.asarray(features)
    order = _check_order(order)
    if features.ndim != 2 or features.shape[1] != order.size:
        raise ValueError(
            f"`features` must be [N, C] with C = {order.size} (the ranking's length). "
            f"Received: features of shape {features.shape}"
        )
    fractions = sorted(set(_check_fractions(fractions)) | {0.0})
    curve, halving, baseline = [], None, None
    for fraction in fractions:
        count = count_for(fraction, order.size)
        kept = features.copy()
        kept[:, order[:count]] = 0.0
        value = float(score(kept))
        baseline = value if baseline is None else baseline
        curve.append({"fraction": fraction, "num_channels": count, "score": value})
        if halving is None and fraction > 0 and value <= baseline / 2:
            halving = fraction
    return curve, halving


__all__ = ["ablation_curve", "label_scores", "order_by_score"]
