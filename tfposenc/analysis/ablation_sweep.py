"""The position attack: remove the top-ranked channels vs random ones, fraction by fraction."""

import math
import numbers

import numpy as np

from tfposenc.analysis.evaluators import accuracy
from tfposenc.validation import check_positive_int

# Fractions of the backbone's output channels removed (0 to 95 %), as in issue 11.
DEFAULT_FRACTIONS = (0.0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)


def _check_order(order):
    original = order
    order = np.asarray(order)
    if (
        order.ndim != 1
        or order.size == 0
        or not np.issubdtype(order.dtype, np.integer)
        or not np.array_equal(np.sort(order), np.arange(order.size))
    ):
        raise ValueError(
            "`order` must be a ranking of all channels: a permutation of 0..C-1. "
            f"Received: order={original!r}"
        )
    return order.astype("int64")


def _check_fractions(fractions):
    fractions = tuple(fractions)
    if not fractions or any(
        isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 <= f <= 1 for f in fractions
    ):
        raise ValueError(
            f"`fractions` must be numbers in [0, 1]. Received: fractions={fractions!r}"
        )
    return tuple(float(f) for f in fractions)


def _as_results(value):
    if isinstance(value, dict):
        results = dict(value)
    else:
        results = {"overall": value}
    for name, number in results.items():
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise TypeError(
                "`evaluate` must return a float or a dict of named floats. "
                f"Received: {name}={number!r}"
            )
    return {name: float(number) for name, number in results.items()}


def count_for(fraction, num_channels):
    """The number of channels removed at `fraction`: `fraction * C` rounded half up."""
    return int(math.floor(fraction * num_channels + 0.5))


def random_draws_for(num_channels, count, draws, seed):
    """`draws` distinct random subsets (sorted lists) of `count` of `num_channels` channels.

    Seeded by `(seed, count)` alone, so a fraction's draws do not depend on the other
    fractions of the sweep. Fewer are returned when fewer distinct subsets exist.
    """
    rng = np.random.default_rng([seed, count])
    wanted = min(draws, math.comb(num_channels, count))
    subsets, seen = [], set()
    while len(subsets) < wanted:
        subset = tuple(sorted(rng.choice(num_channels, size=count, replace=False).tolist()))
        if subset not in seen:
            seen.add(subset)
            subsets.append(list(subset))
    return subsets


def magnitude_deciles(magnitudes):
    """The decile (0-9) of each channel by `magnitudes` (e.g. mean |z|), by rank (ties by
    channel index), so the ten groups differ in size by at most one channel."""
    ranks = np.empty(len(magnitudes), "int64")
    ranks[np.argsort(magnitudes, kind="stable")] = np.arange(len(magnitudes))
    return ranks * 10 // len(magnitudes)


def matched_draws_for(chosen, magnitudes, draws, seed):
    """`draws` distinct random channel sets (sorted lists) with as many channels in each
    decile of `magnitudes` as `chosen` has: random sets of the same size profile, the
    control for a ranking that only finds big channels. Seeded by `(seed, len(chosen),
    1)`; fewer are returned when fewer distinct sets exist."""
    deciles = magnitude_deciles(magnitudes)
    wanted_per = np.bincount(deciles[list(chosen)], minlength=10)
    pools = [np.flatnonzero(deciles == d) for d in range(10)]
    possible = math.prod(math.comb(len(p), int(w)) for p, w in zip(pools, wanted_per))
    rng = np.random.default_rng([seed, len(chosen), 1])
    subsets, seen = [], set()
    while len(subsets) < min(draws, possible):
        picked = [rng.choice(p, size=int(w), replace=False) for p, w in zip(pools, wanted_per)]
        subset = tuple(sorted(np.concatenate(picked).astype(int).tolist()))
        if subset not in seen:
            seen.add(subset)
            subsets.append(list(subset))
    return subsets


def _check_magnitudes(magnitudes, num_channels):
    if magnitudes is None:
        return None
    array = np.asarray(magnitudes, dtype="float64")
    if array.shape != (num_channels,) or not np.all(np.isfinite(array)):
        raise ValueError(
            f"`magnitudes` must be {num_channels} finite numbers, one per channel. "
            f"Received: magnitudes of shape {array.shape}"
        )
    return array


def ablation_sweep(
    model,
    dataset,
    order,
    fractions=DEFAULT_FRACTIONS,
    random_draws=5,
    evaluate=None,
    seed=0,
    metric=None,
    controls=None,
    claim_fractions=(),
    claim_draws=19,
    magnitudes=None,
):
    """Removes the top-ranked vs random channels at each fraction and evaluates the damage.

    At each fraction `f`, `n = round(f * C)` channels are zeroed at every position of the
    backbone output with `model.ablate(channels)` (replacing any ablation the model had),
    and `evaluate(model, dataset)` is measured: once for the first `n` channels of `order`
    ("ranked"), and once for each of `random_draws` distinct random sets of `n` channels
    ("random", reported as mean and population std over the draws). No retraining.
    Identical channel sets are evaluated once. The model's previous ablation is restored
    afterwards, also when `evaluate` raises.

    Args:
        model: a tfposenc `Task` (anything with `ablate(channels)` and
            `ablated_channels`).
        dataset: evaluation data, passed unchanged to `evaluate`.
        order: the ranking, a permutation of all `C` channel indices (the first
            output of `rank_position_channels`).
        fractions: numbers in [0, 1], the fractions of the channels to remove.
            Defaults to `DEFAULT_FRACTIONS` (0, 1, 2.5, 5, 10, 20, 40, 60, 80, 90, 95 %).
        random_draws: int >= 1, random channel sets per fraction. Defaults to `5`.
        evaluate: callable `(model, dataset) -> float | {region: float}`. Defaults to
            top-1 accuracy (`tfposenc.analysis.accuracy`); see also
            `GridRegionAccuracy` and `SegmentationRegionIoU`.
        seed: int, seeds the random draws (per `(seed, n)`). Defaults to `0`.
        metric: string, the metric name written into the records. Defaults to
            `evaluate.metric` if it has one, else `"value"`.
        controls: dict `{selection: order}` of other rankings (e.g. `"magnitude"`),
            each removed top-first like `order` and recorded under its own `selection`
            (std 0). Defaults to `None` (none).
        claim_fractions: fractions of `fractions` where claims are judged; there the
            random draws are `max(random_draws, claim_draws)` (a test of the ranked
            value against its random counterpart needs 19 draws or more). Defaults to
            `()`.
        claim_draws: int >= 1, the random draws at `claim_fractions`. Defaults to `19`.
        magnitudes: per-channel magnitudes (e.g. the `"magnitude"` scores of
            `rank_position_channels`, mean |z|) or None. When given, each fraction also
            gets `random_matched` records: as many random draws as `random`, each with
            as many channels in every decile of `magnitudes` as the ranked set (the
            control for a ranking that only finds big channels). Defaults to `None`.

    Returns:
        A list of records, one per fraction, selection and region (a float result is
        region `"overall"`), each `{"selection": "ranked" | "random" | a control, "fraction",
        "num_channels", "region", "metric", "value", "std", "values"}`: `value` is the
        ranked result or the mean over the draws, `std` is 0 for ranked, `values` the
        result of each draw (one for ranked); random (and `random_matched`) records
        also carry `draws`, the number of distinct random sets (fewer than asked only
        where fewer exist); the regions of one draw are measured together, so
        `values[j]` of two regions come from the same draw. Add `padding` and `task` for
        a results file.
    """
    if not callable(getattr(model, "ablate", None)):
        raise ValueError(
            "`model` must be a tfposenc Task with `ablate(channels)` and "
            "`ablated_channels`; wrap a plain Keras model as "
            "Classifier(Backbone.from_model(model), num_classes). "
            f"Received: model={type(model).__name__}"
        )
    order = _check_order(order)
    fractions = _check_fractions(fractions)
    check_positive_int(random_draws, "random_draws")
    check_positive_int(claim_draws, "claim_draws")
    claim_fractions = _check_fractions(claim_fractions) if len(claim_fractions) else ()
    if evaluate is None:
        evaluate = accuracy
    if not callable(evaluate):
        raise ValueError(f"`evaluate` must be callable. Received: evaluate={evaluate!r}")
    if metric is None:
        metric = getattr(evaluate, "metric", "value")
    num_channels = order.size
    magnitudes = _check_magnitudes(magnitudes, num_channels)
    controls = dict(controls or {})
    for name, control in list(controls.items()):
        if name in ("ranked", "random", "random_matched") or not isinstance(name, str):
            raise ValueError(
                '`controls` must be named by strings other than "ranked", "random" and '
                '"random_matched". '
                f"Received: {name!r}"
            )
        controls[name] = _check_order(control)
        if controls[name].size != num_channels:
            raise ValueError(
                f"`controls` must rank all {num_channels} channels. Received: {name} ranks "
                f"{controls[name].size}"
            )
    cache = {}

    def measure(channels):
        key = tuple(sorted(channels))
        if key not in cache:
            model.ablate(list(key))
            cache[key] = _as_results(evaluate(model, dataset))
        return cache[key]

    records = []
    previous = list(model.ablated_channels)
    try:
        for fraction in fractions:
            count = count_for(fraction, num_channels)
            ranked = measure(order[:count].tolist())
            others = {name: measure(c[:count].tolist()) for name, c in controls.items()}
            wanted = random_draws
            if any(math.isclose(fraction, c, abs_tol=1e-9) for c in claim_fractions):
                wanted = max(random_draws, claim_draws)
            random_sets = {"random": random_draws_for(num_channels, count, wanted, seed)}
            if magnitudes is not None:
                top = order[:count].tolist()
                random_sets["random_matched"] = matched_draws_for(top, magnitudes, wanted, seed)
            measured = {k: [measure(s) for s in sets] for k, sets in random_sets.items()}
            for region, value in ranked.items():
                base = {"fraction": fraction, "num_channels": count, "region": region}
                records.append(
                    {
                        "selection": "ranked",
                        **base,
                        "metric": metric,
                        "value": value,
                        "std": 0.0,
                        "values": [value],
                    }
                )
                for selection, draws in measured.items():
                    values = [draw[region] for draw in draws]
                    records.append(
                        {
                            "selection": selection,
                            **base,
                            "metric": metric,
                            "value": float(np.mean(values)),
                            "std": float(np.std(values)),
                            "values": values,
                            "draws": len(values),
                        }
                    )
                for name, results in others.items():
                    value = results[region]
                    records.append(
                        {
                            "selection": name,
                            **base,
                            "metric": metric,
                            "value": value,
                            "std": 0.0,
                            "values": [value],
                        }
                    )
    finally:
        model.ablate(previous)
    return records
