"""The shift-invariance measurements of one trained classifier.

Top-1 on the test split, then the library's shift consistency
(`tfposenc.metrics.shift_agreement`): Cons.m for m = 1 .. 16 with the poster's
`"centred"` views (black fill, the two views differ by at most m - 1 pixels per axis;
Cons.1 compares an image with itself), and circular consistency (two rolls by any
amount). Every method is measured with the same seeds, so it sees the same views.
"""

from tfposenc.metrics.consistency import shift_agreement
from trainers.framework import evaluators

CURVE_SHIFTS = tuple(range(1, 17))


def consistency_curve(model, dataset, shifts, passes, seed):
    """`{m: Cons.m}` for every `m` in `shifts`; `passes(m)` passes each."""
    return {m: shift_agreement(model, dataset, m, "centred", passes(m), seed=seed) for m in shifts}


def circular_consistency(model, dataset, size, passes, seed):
    """Top-1 agreement (%) of two circular shifts by independent offsets in [0, size)."""
    return shift_agreement(model, dataset, size, "circular", passes, seed=seed)


def evaluate(config, classifier, data):
    """Yields top1, cons8, cons16, circular_consistency, examples, test_digest (the
    SHA-1 of the test images and labels: every row's is the same) and the curve."""
    accuracy = dict(evaluators.classification(classifier, data.test))
    passes = lambda m: config.passes if m in (8, 16) else config.curve_passes  # noqa: E731
    curve = consistency_curve(classifier, data.test, CURVE_SHIFTS, passes, config.seed)
    yield "top1", accuracy["accuracy"]
    yield "cons8", curve[8]
    yield "cons16", curve[16]
    yield (
        "circular_consistency",
        circular_consistency(classifier, data.test, config.image_size, config.passes, config.seed),
    )
    yield "examples", accuracy["examples"]
    yield "test_digest", data.extra["test_digest"]
    yield "curve", {str(m): value for m, value in curve.items()}


__all__ = ["CURVE_SHIFTS", "circular_consistency", "consistency_curve", "evaluate"]
