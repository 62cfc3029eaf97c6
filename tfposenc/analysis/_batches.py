"""Iterating evaluation data: a batched `tf.data.Dataset`, any iterable of batches, or arrays."""

import keras
import numpy as np

DEFAULT_BATCH_SIZE = 64


def iterate_batches(dataset, batch_size=DEFAULT_BATCH_SIZE):
    """Yields `(images, labels, extra)` numpy batches; `labels`/`extra` are None if absent.

    `dataset` may be a `tf.data.Dataset` (batched, or unbatched: then batched here by
    `batch_size`), an iterable of batches, or one numpy array of images `[B, H, W, C]`.
    A batch is `images`, `(images,)`, `(images, labels)` or `(images, labels, extra)`.
    """
    if isinstance(dataset, np.ndarray):
        dataset = [dataset]
    else:
        dataset = _batched(dataset, batch_size)
    for batch in dataset:
        if isinstance(batch, dict):
            raise ValueError(
                "`dataset` must yield images or (images, labels[, extra]) tuples. "
                f"Received: a dict with keys {sorted(batch)}"
            )
        parts = list(batch) if isinstance(batch, (tuple, list)) else [batch]
        if not 1 <= len(parts) <= 3:
            raise ValueError(
                "`dataset` must yield images or (images, labels[, extra]) tuples. "
                f"Received: a tuple of {len(parts)} parts"
            )
        parts = [np.asarray(p) for p in parts] + [None] * (3 - len(parts))
        yield tuple(parts)


def _batched(dataset, batch_size):
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - other backends without TensorFlow
        return dataset
    if isinstance(dataset, tf.data.Dataset):
        spec = dataset.element_spec
        images = spec[0] if isinstance(spec, (tuple, list)) else spec
        if images.shape.rank == 3:
            dataset = dataset.batch(batch_size)
        return dataset.as_numpy_iterator()
    return dataset


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


class _PooledBackbone:
    """`pooled_features` of a backbone: its output, globally averaged."""

    def __init__(self, backbone):
        self.backbone = backbone

    def pooled_features(self, images, training=False):
        features = self.backbone(images, training=training)
        return keras.ops.mean(keras.ops.cast(features, "float32"), axis=(1, 2))


def with_pooled_features(model):
    """`model` if it has `pooled_features` (a tfposenc task), else an adapter over a
    `Backbone` or a functional Keras model (through `Backbone.from_model`: its last 4D
    output, globally averaged)."""
    if hasattr(model, "pooled_features"):
        return model
    from tfposenc.models.backbone import Backbone

    if isinstance(model, Backbone):
        return _PooledBackbone(model)
    if isinstance(model, keras.Model):
        return _PooledBackbone(Backbone.from_model(model))
    raise ValueError(
        "`model` must be a tfposenc task, a Backbone or a functional Keras model (with "
        f"`pooled_features` or a 4D feature map). Received: model={type(model).__name__}"
    )


def pooled(model, images):
    """The model's pooled backbone channels in inference mode, float64 numpy `[B, C]`."""
    return to_numpy(model.pooled_features(images, training=False)).astype("float64")


def logits(model, images):
    """The model's outputs in inference mode, numpy."""
    return to_numpy(model(images, training=False))
