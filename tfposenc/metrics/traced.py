"""One traced inference function per model, for every evaluation loop of the package.

`traced(model)` returns a `TracedModel`: `model(images, training=False)` and, where the
model has them, `pooled_features(images, training=False)` each run as one
`tf.function` (no Python work per image, the whole batch under `MirroredStrategy` too,
unlike `predict_on_batch`); `ablate` and `ablated_channels` pass through to the model
(its ablation mask is a variable, so an ablation takes effect without retracing). The
traced functions are cached on the model, so every caller shares them. TensorFlow-only.
"""

import tensorflow as tf


class TracedModel:
    """A model seen through traced inference calls (see the module docstring)."""

    def __init__(self, model):
        self.model = model
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self._pooled = None
        if hasattr(model, "pooled_features"):
            self._pooled = tf.function(
                lambda x: model.pooled_features(x, training=False), reduce_retracing=True
            )

    def __call__(self, images, training=False):
        return self._call(images)

    def pooled_features(self, images, training=False):
        if self._pooled is None:
            raise ValueError(
                "`model` must have `pooled_features` (a tfposenc task, or a model wrapped "
                f"with `Backbone.from_model`). Received: {type(self.model).__name__}"
            )
        return self._pooled(images)

    def ablate(self, channels=()):
        self.model.ablate(channels)

    @property
    def ablated_channels(self):
        return self.model.ablated_channels


def traced(model):
    """The model's `TracedModel` (made once and cached on the model); a `TracedModel`
    is returned as it is."""
    if isinstance(model, TracedModel):
        return model
    cached = getattr(model, "_tfposenc_traced", None)
    if cached is None:
        cached = TracedModel(model)
        try:
            model._tfposenc_traced = cached
        except AttributeError:  # an object that takes no attributes: not cached
            pass
    return cached


__all__ = ["TracedModel", "traced"]
