"""Feature maps of the named backbone stages, and a figure of them."""

import keras
import numpy as np
from matplotlib.figure import Figure

from tfposenc.analysis._batches import to_numpy
from tfposenc.models.backbone import Backbone
from tfposenc.validation import check_positive_int


def backbone_of(model_or_backbone):
    """`(backbone, prepare)`: the backbone and the map from the caller's images to its input.

    A `Backbone` takes its input as given; a functional Keras model is taken through
    `Backbone.from_model` (its last 4D output). A task (anything with a `.backbone`) maps raw
    images to backbone inputs with its `preprocess` method when it has one (a task that
    normalises pixels itself), else passes them through.
    """
    if isinstance(model_or_backbone, Backbone):
        return model_or_backbone, lambda images: images
    if isinstance(model_or_backbone, keras.Model) and not hasattr(model_or_backbone, "backbone"):
        return Backbone.from_model(model_or_backbone), lambda images: images
    backbone = getattr(model_or_backbone, "backbone", None)
    if not isinstance(backbone, Backbone):
        raise ValueError(
            "`model_or_backbone` must be a tfposenc Backbone, a task with a `.backbone` or "
            "a functional Keras model. "
            f"Received: model_or_backbone={type(model_or_backbone).__name__}"
        )
    preprocess = getattr(model_or_backbone, "preprocess", None)
    return backbone, (preprocess if callable(preprocess) else (lambda images: images))


def feature_maps(model_or_backbone, images, stages=None):
    """The outputs of the backbone's named stages on `images`, in inference mode.

    Args:
        model_or_backbone: a `tfposenc.models.Backbone`, a task over one (its
            `preprocess`, if any, is applied first), or a functional Keras model
            (through `Backbone.from_model`).
        images: `[B, H, W, C]` images as the model takes them.
        stages: list of stage names (`backbone.stage_names`, e.g. `"stem"`,
            `"stage1"`, ...); None for all. Defaults to `None`.

    Returns:
        A dict `{stage: float32 numpy [B, h, w, channels]}`, in the order of `stages`.
    """
    backbone, prepare = backbone_of(model_or_backbone)
    extractor = backbone.feature_extractor(stages)
    outputs = extractor(prepare(images), training=False)
    names = backbone.stage_names if stages is None else list(stages)
    return {name: to_numpy(outputs[name]).astype("float32") for name in names}


def plot_feature_maps(maps, image=None, index=0, num_channels=4, title=None):
    """A figure of feature maps: one row per stage.

    Each row shows the mean over channels of `|activation|`, then the `num_channels`
    channels with the largest spatial standard deviation, each on its own colour scale.
    Built with the matplotlib object API (no pyplot state); save with
    `figure.savefig(path)`.

    Args:
        maps: dict `{stage: [B, h, w, C]}`, as `feature_maps` returns.
        image: optional `[B, H, W, C]` or `[H, W, C]` input, shown above the maps
            (scaled to [0, 1] for display). Defaults to `None`.
        index: int, the example of the batch to show. Defaults to `0`.
        num_channels: int >= 0, single channels per row. Defaults to `4`.
        title: optional string, the figure's title.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    if not maps:
        raise ValueError("`maps` must hold at least one stage. Received: maps={}")
    check_positive_int(num_channels, "num_channels", minimum=0)
    columns = 1 + num_channels
    rows = len(maps) + (image is not None)
    figure = Figure(figsize=(2.6 * columns, 2.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    row = 0
    if image is not None:
        picture = np.asarray(image, dtype="float32")
        picture = picture[index] if picture.ndim == 4 else picture
        low, high = picture.min(), picture.max()
        picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
        axes[0, 0].imshow(picture.squeeze(), cmap="gray" if picture.shape[-1] == 1 else None)
        axes[0, 0].set_title("input", fontsize=12)
        row = 1
    for stage, values in maps.items():
        values = np.asarray(values)[index]
        axes[row, 0].imshow(np.abs(values).mean(axis=-1), cmap="viridis")
        axes[row, 0].set_title(f"{stage} mean|a|", fontsize=12)
        spread = values.reshape(-1, values.shape[-1]).std(axis=0)
        for column, channel in enumerate(np.argsort(-spread, kind="stable")[:num_channels], 1):
            axes[row, column].imshow(values[..., channel], cmap="viridis")
            axes[row, column].set_title(f"{stage} c{channel}", fontsize=12)
        row += 1
    if title:
        figure.suptitle(title, fontsize=14)
    return figure
