"""The shift-invariance measurements of one trained classifier.

Top-1 on the test split, then the library's per-image shift agreement
(`tfposenc.metrics.per_image_agreement`): Cons.m for m = 1 .. 16 (black-canvas data: the
poster's `"centred"` views, black fill, the two views differ by at most m - 1 pixels per
axis; crop-mode data: two `image_size` windows of the larger test image at offsets in
`[0, m)`, no fill; Cons.1 compares an image with itself) and circular consistency (two
rolls by any amount). Every row is measured with the evaluation seed `--seed` on the
same test images, so every row sees the same views (the same offsets per image) and
two rows' per-image agreements can be compared image by image.
"""

import numpy as np

from tfposenc.metrics.consistency import per_image_agreement, shift_agreement
from trainers.framework import evaluators
from trainers.shift_invariance.data import crop_mode

CURVE_SHIFTS = tuple(range(1, 17))
PAIRED = (8, 16)  # Cons.m kept per image (mean over passes) for the paired comparisons


def agreement(config, dataset, classifier, data, m, passes):
    """`[passes, images]` bools: whether each test image's two views at shift `m` agree."""
    if crop_mode(dataset):
        views, mode, crop_size = data.extra["views"], "crop", config.image_size
    else:
        views, mode, crop_size = data.test, "centred", None
    return per_image_agreement(
        classifier, views, m, mode, passes, seed=config.seed, crop_size=crop_size
    )


def circular_consistency(model, dataset, size, passes, seed):
    """Top-1 agreement (%) of two circular shifts by independent offsets in [0, size)."""
    return shift_agreement(model, dataset, size, "circular", passes, seed=seed)


def evaluate(config, dataset, classifier, data):
    """Yields top1, cons8, cons16, circular_consistency, examples, test_digest (the
    SHA-1 of the test images and labels: every row's is the same), the curve and
    `agreement_cons8` / `agreement_cons16` (per test image, the fraction of passes whose
    two views agree: what `trainers.shift_invariance.claims` pairs)."""
    accuracy = dict(evaluators.classification(classifier, data.test))
    curve, per_image = {}, {}
    for m in CURVE_SHIFTS:
        passes = config.passes if m in PAIRED else config.curve_passes
        found = agreement(config, dataset, classifier, data, m, passes)
        curve[m] = float(100.0 * found.mean())
        if m in PAIRED:
            per_image[m] = [round(float(v), 4) for v in np.mean(found, axis=0)]
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
    for m in PAIRED:
        yield f"agreement_cons{m}", per_image[m]


__all__ = ["CURVE_SHIFTS", "PAIRED", "agreement", "circular_consistency", "evaluate"]
