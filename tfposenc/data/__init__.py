"""Input pipelines: the embedded digits, generated glyphs, tensorflow-datasets sources,
grid canvases, the training crop."""

from tfposenc.data.canvas import centre_crop, on_black_canvas
from tfposenc.data.crops import cuts_own_crops, training_crop
from tfposenc.data.grid import make_grid, normalize, paste
from tfposenc.data.segmentation import make_segmentation
from tfposenc.data.sources import (
    DATASETS,
    DatasetInfo,
    DatasetNotFoundError,
    info,
    load,
    load_digits_arrays,
    load_glyph_arrays,
)

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetNotFoundError",
    "centre_crop",
    "cuts_own_crops",
    "info",
    "load",
    "load_digits_arrays",
    "load_glyph_arrays",
    "make_grid",
    "make_segmentation",
    "normalize",
    "on_black_canvas",
    "paste",
    "training_crop",
]
