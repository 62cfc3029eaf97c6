"""SavedModel export in TF Serving's layout, written atomically.

`export_saved_model(model, base_path)` writes `base_path/<version>/` with two signatures:

- `serving_default`: `images` uint8 `[batch, H, W, 3]` pixels -> `probabilities`
  (softmax), `logits` and `classes` (int64 argmax). The model owns its normalisation
  (every tfposenc `Task` normalises raw pixels itself), so clients send raw pixels.
- `pooled_features`: `images` -> `pooled_features`, the globally averaged backbone
  channels (for models that have `pooled_features`, i.e. every tfposenc task).

The SavedModel is written to a hidden temporary directory inside `base_path` and renamed
to its version number only when complete, so a server polling `base_path` (TF Serving
ignores non-integer names) never sees a half-written version.
"""

import os
import re
import shutil
import uuid

import keras
import tensorflow as tf


def _versions(base_path):
    if not os.path.isdir(base_path):
        return []
    return sorted(int(n) for n in os.listdir(base_path) if re.fullmatch(r"\d+", n))


def next_version(base_path):
    """The next free integer version under `base_path` (1 for an empty one)."""
    versions = _versions(base_path)
    return versions[-1] + 1 if versions else 1


def export_saved_model(model, base_path, version=None, image_shape=(None, None)):
    """Exports `model` to `base_path/<version>/` for TF Serving; returns that path.

    Args:
        model: a Keras model mapping raw pixels (float, 0..255) to logits; every
            tfposenc `Task` does, with the normalisation of its training data inside.
        base_path: the model's base path (one integer subdirectory per version).
        version: int >= 1 or None (the next free version). An existing version is never
            overwritten.
        image_shape: `(height, width)` the signature accepts; None entries accept any
            size. Defaults to `(None, None)`.
    """
    if version is None:
        version = next_version(base_path)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"`version` must be an int >= 1. Received: version={version!r}")
    target = os.path.join(base_path, str(version))
    if os.path.exists(target):
        raise ValueError(
            f"`version` {version} already exists in {base_path}; exports never overwrite. "
            f"Received: version={version!r}"
        )
    height, width = image_shape
    spec = tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")

    def pixels(images):
        return tf.cast(images, tf.float32)

    def serve(images):
        logits = tf.cast(model(pixels(images), training=False), tf.float32)
        return {
            "probabilities": tf.nn.softmax(logits),
            "logits": logits,
            "classes": tf.argmax(logits, axis=-1),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    if hasattr(model, "pooled_features"):

        def pooled(images):
            features = model.pooled_features(pixels(images), training=False)
            return {"pooled_features": tf.cast(features, tf.float32)}

        archive.add_endpoint("pooled_features", pooled, input_signature=[spec])

    os.makedirs(base_path, exist_ok=True)
    staging = os.path.join(base_path, f".tmp-{version}-{uuid.uuid4().hex}")
    try:
        archive.write_out(staging, verbose=False)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
