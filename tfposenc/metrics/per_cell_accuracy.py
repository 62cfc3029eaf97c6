"""Location accuracy per grid cell, for heat maps."""

import keras
from keras import ops

from tfposenc.validation import check_positive_int


@keras.saving.register_keras_serializable(package="tfposenc")
class PerCellAccuracy(keras.metrics.Metric):
    """Top-1 location accuracy of each grid cell.

    `y_true` is the location label `row * grid_size + col`; `y_pred` are logits or
    probabilities over the `grid_size ** 2` cells. `result()` is a `[grid_size,
    grid_size]` matrix of accuracies in [0, 1] (NaN for cells never seen), ready for a
    heat map; `mean_accuracy()` is the overall accuracy. Because the result is a matrix,
    use the metric with `evaluate`-style loops or `update_state`, not in `compile`.

    Args:
        grid_size: int >= 1.
    """

    def __init__(self, grid_size, name="per_cell_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.grid_size = check_positive_int(grid_size, "grid_size")
        cells = grid_size * grid_size
        self.correct = self.add_variable((cells,), initializer="zeros", name="correct")
        self.count = self.add_variable((cells,), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        cells = self.grid_size * self.grid_size
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        predicted = ops.cast(ops.argmax(ops.convert_to_tensor(y_pred), axis=-1), "int32")
        hits = ops.cast(ops.equal(predicted, y_true), self.dtype)
        onehot = ops.one_hot(y_true, cells, dtype=self.dtype)
        if sample_weight is not None:
            weight = ops.cast(ops.reshape(sample_weight, (-1, 1)), self.dtype)
            onehot = onehot * weight
        self.count.assign_add(ops.sum(onehot, axis=0))
        self.correct.assign_add(ops.sum(onehot * hits[:, None], axis=0))

    def result(self):
        per_cell = self.correct / ops.where(self.count > 0, self.count, float("nan"))
        return ops.reshape(per_cell, (self.grid_size, self.grid_size))

    def mean_accuracy(self):
        return ops.sum(self.correct) / ops.maximum(ops.sum(self.count), 1.0)

    def reset_state(self):
        self.correct.assign(ops.zeros_like(self.correct))
        self.count.assign(ops.zeros_like(self.count))

    def get_config(self):
        return {"grid_size": self.grid_size, "name": self.name, "dtype": self.dtype}
