import numpy as np
import pytest

from tests.analysis.fakes import FakeTask
from tfposenc.analysis import (
    GridRegionAccuracy,
    RegionConfusion,
    SegmentationRegionIoU,
    border_cells,
    column_regions,
    confusion_matrix,
    grid_region_accuracy,
    mean_iou,
    region_mean_iou,
    ring_mask,
)


def test_column_regions_of_a_cityscapes_width():
    regions = column_regions(2048)
    assert np.flatnonzero(regions["centre"]).tolist() == list(range(512, 1536))
    assert set(regions) == {"overall", "left", "right", "centre"}  # the authors' regions
    assert np.flatnonzero(regions["left"]).tolist() == list(range(1024))
    assert np.flatnonzero(regions["right"]).tolist() == list(range(1024, 2048))
    assert regions["overall"].all()


def test_column_regions_of_an_odd_width():
    regions = column_regions(7)
    assert np.flatnonzero(regions["left"]).tolist() == [0, 1, 2]
    assert np.flatnonzero(regions["right"]).tolist() == [4, 5, 6]
    assert np.flatnonzero(regions["centre"]).tolist() == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("k", [3, 5, 7])
def test_border_cells_are_the_outer_ring(k):
    border = border_cells(k)
    for cell in range(k * k):
        row, col = divmod(cell, k)
        assert border[cell] == (row in (0, k - 1) or col in (0, k - 1))
    assert border.sum() == 4 * k - 4 and (~border).sum() == (k - 2) ** 2


def test_border_cells_spelled_out_for_k3():
    assert np.flatnonzero(~border_cells(3)).tolist() == [4]
    assert np.flatnonzero(~border_cells(5)).tolist() == [6, 7, 8, 11, 12, 13, 16, 17, 18]
    assert border_cells(2).all() and border_cells(1).all()


def test_ring_mask():
    expected = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]], bool)
    np.testing.assert_array_equal(ring_mask(3, 4), expected)
    assert ring_mask(6, 6, ring=2).sum() == 36 - 4


def test_grid_region_accuracy_by_hand():
    # k = 3: cell 4 is the only inner cell.
    cells = [4, 4, 0, 1, 8, 4]
    correct = [True, False, True, True, False, True]
    result = grid_region_accuracy(cells, correct, 3)
    assert result == pytest.approx({"overall": 4 / 6, "border": 2 / 3, "inner": 2 / 3})
    assert np.isnan(grid_region_accuracy([0, 1], [True, True], 3)["inner"])
    with pytest.raises(ValueError, match=r"in \[0, 9\)"):
        grid_region_accuracy([9], [True], 3)


def test_confusion_matrix_and_miou_by_hand():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 255])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2, 0])
    confusion = confusion_matrix(y_true, y_pred, 4, ignore_class=255)
    expected = np.zeros((4, 4), int)
    expected[0, 0], expected[0, 1] = 1, 1
    expected[1, 1] = 2
    expected[2, 2], expected[2, 0] = 2, 1
    np.testing.assert_array_equal(confusion, expected)
    # IoU: class 0 = 1 / (2 + 2 - 1) = 1/3; class 1 = 2 / (2 + 3 - 2) = 2/3;
    # class 2 = 2 / (3 + 2 - 2) = 2/3; class 3 never occurs and is left out.
    assert mean_iou(confusion) == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    assert np.isnan(mean_iou(np.zeros((3, 3))))
    with pytest.raises(ValueError, match=r"classes in \[0, 4\)"):
        confusion_matrix(y_true, y_pred, 4)


def test_region_mean_iou_by_hand():
    # Width 8: left 0-3, right 4-7, centre 2-5.
    y_true = np.zeros((1, 2, 8), int)
    y_true[0, :, 6:] = 1
    y_pred = y_true.copy()
    y_pred[0, 0, 0] = 1  # a left error
    result = region_mean_iou(y_true, y_pred, 2)
    # overall: class 0 TP 11, union 12; class 1 TP 4, union 5.
    assert result["overall"] == pytest.approx((11 / 12 + 4 / 5) / 2)
    # left: class 0 TP 7, union 8; class 1 TP 0, union 1.
    assert result["left"] == pytest.approx((7 / 8 + 0) / 2)
    assert result["right"] == 1.0 and result["centre"] == 1.0
    assert "border" not in result


def test_cell_regions_and_ring_mean_iou_against_a_numpy_oracle():
    from tfposenc.analysis import cell_regions

    masks = cell_regions(10, 15, 5)  # cells of 2 x 3 pixels
    expected = np.kron(border_cells(5).reshape(5, 5), np.ones((2, 3), bool))
    np.testing.assert_array_equal(masks["border"], expected)
    np.testing.assert_array_equal(masks["inner"], ~expected)
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 3, (2, 2, 10, 15))
    result = region_mean_iou(y_true, y_pred, 3, grid_size=5)
    for region, mask in masks.items():
        oracle = mean_iou(confusion_matrix(y_true[:, mask], y_pred[:, mask], 3))
        assert result[region] == pytest.approx(oracle)
    assert result["overall"] == pytest.approx(region_mean_iou(y_true, y_pred, 3)["overall"])


def test_region_confusion_accumulates_batches():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, (2, 4, 6, 10))
    regions = RegionConfusion(3)
    regions.update(y_true[:2], y_pred[:2])
    regions.update(y_true[2:], y_pred[2:])
    assert regions.result() == pytest.approx(region_mean_iou(y_true, y_pred, 3))
    with pytest.raises(ValueError, match="one shape"):
        regions.update(y_true, y_pred[:, :, :5])
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        RegionConfusion(0)


class MapModel:
    """Predicts the label maps it is given (through the images), one class off on the left."""

    def __call__(self, images, training=False):
        labels = images[..., 0].astype(int)
        labels[:, :, 0] = (labels[:, :, 0] + 1) % 3
        return np.eye(3)[labels]


def test_segmentation_region_iou_evaluator():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, (4, 5, 8))
    images = np.repeat(labels[..., None], 3, axis=-1).astype("float32")
    evaluator = SegmentationRegionIoU(3)
    assert evaluator.metric == "miou"
    batches = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    result = evaluator(MapModel(), batches)
    predicted = MapModel()(images).argmax(-1)
    assert result == pytest.approx(region_mean_iou(labels, predicted, 3))
    assert result["right"] == 1.0 and result["left"] < 1.0


def test_grid_region_accuracy_evaluator_reads_cells_from_labels_or_third_element():
    # Two channels, logits = pooled: bright images predict class 0, dark ones class 1.
    model = FakeTask(np.stack([np.ones((2, 2)), 0.5 * np.ones((2, 2))]))
    model.readout = np.array([[1.0, 0.0], [0.0, 1.0]])
    images = np.ones((3, 2, 2, 3), "float32")
    evaluator = GridRegionAccuracy(3)
    # Location task: labels are the cells; the model always says 0 (a border cell).
    result = evaluator(model, [(images, np.array([0, 4, 4]))])
    assert result == pytest.approx({"overall": 1 / 3, "border": 1.0, "inner": 0.0})
    # Other targets: cells come third.
    result = evaluator(model, [(images, np.array([0, 0, 1]), np.array([4, 0, 0]))])
    assert result == pytest.approx({"overall": 2 / 3, "border": 0.5, "inner": 1.0})
    with pytest.raises(ValueError, match="Received: grid_size=0"):
        GridRegionAccuracy(0)
