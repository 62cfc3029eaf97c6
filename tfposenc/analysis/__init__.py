"""The position attack: rank position-encoding channels, remove them, measure by region;
feature maps and border artifacts; the position probe on any backbone."""

from tfposenc.analysis.ablation_sweep import DEFAULT_FRACTIONS, ablation_sweep
from tfposenc.analysis.border_artifacts import border_artifact_scores
from tfposenc.analysis.channel_scores import ablation_curve, label_scores, order_by_score
from tfposenc.analysis.evaluators import GridRegionAccuracy, SegmentationRegionIoU, accuracy
from tfposenc.analysis.feature_maps import feature_maps, plot_feature_maps
from tfposenc.analysis.position_probe import PROBE_RANKINGS, position_probe
from tfposenc.analysis.ranking import RANKING_METHODS, rank_position_channels, spearman
from tfposenc.analysis.readouts import READOUTS, FineTunedReadouts, FrozenReadouts
from tfposenc.analysis.region_metrics import (
    RegionConfusion,
    confusion_matrix,
    grid_region_accuracy,
    mean_iou,
    region_mean_iou,
)
from tfposenc.analysis.regions import (
    CELL_REGIONS,
    COLUMN_REGIONS,
    GRID_REGIONS,
    border_cells,
    cell_regions,
    column_regions,
    ring_mask,
)

__all__ = [
    "CELL_REGIONS",
    "COLUMN_REGIONS",
    "DEFAULT_FRACTIONS",
    "GRID_REGIONS",
    "PROBE_RANKINGS",
    "RANKING_METHODS",
    "READOUTS",
    "FineTunedReadouts",
    "FrozenReadouts",
    "GridRegionAccuracy",
    "RegionConfusion",
    "SegmentationRegionIoU",
    "ablation_curve",
    "ablation_sweep",
    "accuracy",
    "border_artifact_scores",
    "border_cells",
    "cell_regions",
    "column_regions",
    "confusion_matrix",
    "feature_maps",
    "grid_region_accuracy",
    "label_scores",
    "mean_iou",
    "order_by_score",
    "plot_feature_maps",
    "position_probe",
    "rank_position_channels",
    "region_mean_iou",
    "ring_mask",
    "spearman",
]
