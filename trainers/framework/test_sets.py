"""The grid test set: one home for the canvases a grid experiment is tested on.

The channel-wise experiment tests on them and the push (`python -m trainers.push
--eval-data`) validates on them. Random placements are drawn from `seed +
TEST_SEED_OFFSET` (the training canvases use `seed`, the validation ones `seed + 1`).
"""

from tfposenc.data import info, load, make_grid

TEST_SEED_OFFSET = 2


def grid_test_set(
    dataset, grid_size, task, *, cell_size=None, examples=None, seed=0,
    placement="all_cells", data_dir=None, source=None,
):  # fmt: skip
    """Unbatched `(canvas, target)` test canvases of `dataset`'s test split.

    Args:
        dataset: str. A `tfposenc.data` dataset name.
        grid_size: int. The grid size k.
        task: str. `"location"` (the target is the cell) or `"class"`.
        cell_size: int or None. The cell's side in pixels (None: the image's).
        examples: int or None. The first `examples` test images (None: all).
        seed: int. The run's seed; random placements use `seed + TEST_SEED_OFFSET`.
        placement: str. `"all_cells"` (every image in every cell) or `"random"` (k^2
            passes over the images with fresh random cells).
        data_dir: str or None. Where the prepared datasets are.
        source: `tf.data.Dataset` or None. The test images, when the caller has them
            loaded (and cached) already; overrides `dataset`'s split and `examples`.
    """
    if placement not in ("all_cells", "random"):
        raise ValueError(
            f"`placement` must be 'all_cells' or 'random'. Received: placement={placement!r}"
        )
    if source is None:
        source = load(dataset, "test", data_dir)
        if examples:
            source = source.take(examples)
    grid = dict(grid_size=grid_size, target=task, cell_size=cell_size, mean=info(dataset).mean)
    if placement == "all_cells":
        return make_grid(source, placement="all_cells", **grid)
    return make_grid(source, seed=seed + TEST_SEED_OFFSET, passes=grid_size * grid_size, **grid)


__all__ = ["TEST_SEED_OFFSET", "grid_test_set"]
