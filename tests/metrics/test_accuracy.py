"""`tfposenc.metrics.accuracy` against loops written out example by example, and the
Keras `PerCellAccuracy` against the array function."""

import keras
import numpy as np
import pytest

from tfposenc.metrics import PerCellAccuracy, accuracy_per_cell, top1, top1_hits


def loop_top1(logits, labels):
    right = 0
    for row, label in zip(logits, labels):
        best = max(range(len(row)), key=lambda c: (row[c], -c))  # first maximum, as argmax
        right += best == label
    return right / len(labels)


def loop_per_cell(cells, hits, k):
    grid = [[float("nan")] * k for _ in range(k)]
    counts = [[0] * k for _ in range(k)]
    for cell in range(k * k):
        mine = [h for c, h in zip(cells, hits) if c == cell]
        counts[cell // k][cell % k] = len(mine)
        if mine:
            grid[cell // k][cell % k] = sum(mine) / len(mine)
    return np.array(grid), np.array(counts)


def test_top1_matches_a_loop_over_rows_ties_included():
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 3, size=(200, 5)).astype("float32")  # many ties
    labels = rng.integers(0, 5, size=200)
    assert top1(logits, labels) == pytest.approx(loop_top1(logits.tolist(), labels.tolist()))
    assert top1(logits, labels[:, None]) == top1(logits, labels)  # [B, 1] labels


def test_top1_hits_of_label_maps_is_pixel_accuracy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 3, 6))
    labels = rng.integers(0, 6, size=(2, 4, 3))
    hits = top1_hits(logits, labels)
    assert hits.shape == (2, 4, 3)
    flat = loop_top1(logits.reshape(-1, 6).tolist(), labels.reshape(-1).tolist())
    assert hits.mean() == pytest.approx(flat)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_per_cell_accuracy_matches_a_loop_with_empty_cells_and_shares(k):
    rng = np.random.default_rng(k)
    cells = rng.integers(0, k * k, size=40)
    cells = cells[cells != k * k - 1] if k > 1 else cells  # one cell never seen
    hits = rng.random(cells.size)  # shares of hits (a mean over permutations)
    accuracy, counts = accuracy_per_cell(cells, hits, k)
    expected, expected_counts = loop_per_cell(cells.tolist(), hits.tolist(), k)
    np.testing.assert_allclose(accuracy, expected, equal_nan=True)
    np.testing.assert_array_equal(counts, expected_counts)
    if k > 1:
        assert np.isnan(accuracy[-1, -1]) and counts[-1, -1] == 0


def test_the_keras_metric_agrees_with_the_array_function():
    rng = np.random.default_rng(3)
    k = 3
    logits = rng.normal(size=(90, k * k)).astype("float32")
    cells = rng.integers(0, k * k, size=90)
    metric = PerCellAccuracy(k)
    metric.update_state(cells, logits)
    accuracy, _ = accuracy_per_cell(cells, top1_hits(logits, cells), k)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(metric.result()), accuracy, rtol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: top1_hits(np.zeros((3, 2)), [0, 1]), "one label per prediction"),
        (lambda: accuracy_per_cell([0, 4], [1, 0], 2), r"`cells` must be in \[0, 4\)"),
        (lambda: accuracy_per_cell([0, -1], [1, 0], 2), r"`cells` must be in \[0, 4\)"),
        (lambda: accuracy_per_cell([0, 1], [1], 2), "one entry per example"),
        (lambda: accuracy_per_cell([0], [1], 0), "`grid_size` must be a positive int"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
