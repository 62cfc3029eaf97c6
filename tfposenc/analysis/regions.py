"""Where a prediction is: outer ring vs interior of a grid or map; image columns by region."""

import numpy as np

from tfposenc.validation import check_positive_int

# The authors' regions of a dense prediction (their released code: left, right, centre).
COLUMN_REGIONS = ("overall", "left", "right", "centre")
# A grid's outer ring of cells and the cells inside it (2-D, for grids and dense maps).
GRID_REGIONS = ("overall", "border", "inner")
CELL_REGIONS = GRID_REGIONS[1:]


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
    the authors' central band).
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
    }


def cell_regions(height, width, grid_size):
    """Bool pixel masks `[height, width]` of `CELL_REGIONS` on a `k x k` grid of cells.

    Pixel `(i, j)` is in cell `(i * k // height, j * k // width)`; `border` holds the
    pixels of the outer ring of cells, `inner` the others (empty for k <= 2): the 2-D
    ring of a segmentation canvas, the same split as `border_cells` for a location grid.
    """
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    ring = border_cells(grid_size).reshape(grid_size, grid_size)
    rows = np.arange(height) * grid_size // height
    columns = np.arange(width) * grid_size // width
    border = ring[rows[:, None], columns[None, :]]
    return {"border": border, "inner": ~border}
