"""The few statistical tests the claims need, each with its null and its error rate.

Verdicts are `"shown"`, `"not shown"` and `"inconclusive"`. `level` is always the
two-sided level of an interval; a one-sided claim is "shown" when that interval lies
wholly on its side, so under the claim's null it is wrongly shown at most `(1 - level)
/ 2` of the time (2.5 % at 0.95). numpy and `scipy.stats` only (no TensorFlow).

- `proportion_interval`: Wilson's or the exact interval of a proportion.
- `combined_interval`: an interval from independent variance parts (seeds, test
  images, cells, permutations), Student's t with Welch-Satterthwaite's df.
- `clustered_parts`: the seed and cell parts of a grid accuracy from per-seed, per-cell
  results, cells resampled whole (one draw shared by the seeds).
- `paired_difference_interval`: a paired difference on the same canvases, bootstrapped
  by clusters (seeds x permutations x test images x cells).
- `equivalence_test`: two one-sided tests against a declared margin.
- `beyond_random`: one value against draws of its random counterpart (prediction
  interval with the sample SD, or an exact rank test with enough draws).
"""

from tfposenc.stats._checks import INCONCLUSIVE, NOT_SHOWN, SHOWN, VERDICTS
from tfposenc.stats.beyond_random import beyond_random
from tfposenc.stats.bootstrap import paired_difference_interval
from tfposenc.stats.clustered import clustered_parts
from tfposenc.stats.components import combined_interval
from tfposenc.stats.equivalence import equivalence_test
from tfposenc.stats.proportion import proportion_interval, proportion_variance

__all__ = [
    "INCONCLUSIVE",
    "NOT_SHOWN",
    "SHOWN",
    "VERDICTS",
    "beyond_random",
    "clustered_parts",
    "combined_interval",
    "equivalence_test",
    "paired_difference_interval",
    "proportion_interval",
    "proportion_variance",
]
