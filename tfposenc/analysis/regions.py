"""Where a prediction is: outer ring vs interior of a grid or map; image columns by region."""

import numpy as np

from tfposenc.validation import check_positive_int

COLUMN_REGIONS = ("overall", "left", "right", "centre", "periphery")
GRID_REGIONS = ("overall", "border", "inner")


def ring_mask(height, width, ring=1):
    """Bool `[height, width]`: True on the outer `ring` rows and columns (the border ring)."""
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    check_positive_int(ring, "ring")
    mask = np.ones((height, width), dtype=bool)
    mask[ring : height - ring, ring : width - ring] = False
    return mask


def border_cells(grid_size):
    """Bool `[grid_size ** 2]`, row-major: True for the cells on the outer ring of the grid.

    A `k x k` grid has `4k - 4` border cells (all `k * k` for k <= 2) and `(k - 2) ** 2`
    inner cells.
    """
    check_positive_int(grid_size, "grid_size")
    return ring_mask(grid_size, grid_size).reshape(-1)


def column_regions(width):
    """Bool column masks `[width]` for each of `COLUMN_REGIONS`.

    `left` is columns `[0, width // 2)`, `right` is `[width - width // 2, width)` (an odd
    width's middle column is in neither), `centre` is the middle half of the width,
    `[width // 4, width - width // 4)` (columns 512..1535 of a 2048-wide Cityscapes image,
    the authors' central band), and `periphery` is the complement of `centre`.
    """
    check_positive_int(width, "width")
    columns = np.arange(width)
    half, quarter = width // 2, width // 4
    centre = (columns >= quarter) & (columns < width - quarter)
    return {
        "overall": np.ones(width, dtype=bool),
        "left": columns < half,
        "right": columns >= width - half,
        "centre": centre,
        "periphery": ~centre,
    }
