"""SavedModel export in TF Serving's layout, written atomically, with warm-up records.

`export_saved_model(model, base_path)` writes `base_path/<version>/` with two signatures:

- `serving_default`: `images` uint8 `[batch, H, W, 3]` pixels -> `probabilities`
  (softmax), `logits` and `classes` (int64 argmax). The model owns its normalisation
  (every tfposenc `Task` normalises raw pixels itself), so clients send raw pixels.
- `pooled_features`: `images` -> `pooled_features`, the globally averaged backbone
  channels (for models that have `pooled_features`, i.e. every tfposenc task).

Every version carries `assets.extra/tf_serving_warmup_requests`: TF Serving's warm-up
file, a TFRecord of `PredictionLog` records (`tensorflow-serving-api`), which TF Serving
and `serving.server` replay when they load the version, before it answers requests, so
the first client request does not pay the model's warm-up. `write_warmup_requests`
writes it for any SavedModel from its signature definitions.

The SavedModel is written to a hidden temporary directory inside `base_path` (warm-up
file included) and renamed to its version number only when complete, so a server
polling `base_path` (TF Serving ignores non-integer names) never sees a half-written
version.
"""

import os
import re
import shutil
import uuid

import keras
import numpy as np
import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Size used for warm-up images where a signature accepts any height or width: the size
# of the paper's CIFAR-10 images, and of 4 x 4 grids of 8-px digits.
WARMUP_IMAGE_SIZE = 32
# (batch size, content) of the warm-up requests of each signature: a mid-grey image, a
# random one, and a small batch of random ones.
WARMUP_REQUESTS = ((1, "grey"), (1, "random"), (8, "random"))


# A version directory's name: ASCII digits that fit TF Serving's int64 version. The one
# rule of the library and of `trainers/` (`serving/` keeps a copy, tested to agree).
VERSION_NAME = re.compile(r"[0-9]{1,18}", re.ASCII)


def is_version_name(name):
    """True when `name` is a version directory's name (TF Serving ignores the rest)."""
    return VERSION_NAME.fullmatch(name) is not None


def versions(base_path, complete=True):
    """The sorted integer versions under `base_path`; with `complete`, only those that
    hold a `saved_model.pb` (what a server would load)."""
    if not os.path.isdir(base_path):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_path)
        if is_version_name(name)
        and (not complete or os.path.isfile(os.path.join(base_path, name, "saved_model.pb")))
    )


def next_version(base_path):
    """The next free integer version under `base_path` (1 for an empty one)."""
    taken = versions(base_path, complete=False)
    return taken[-1] + 1 if taken else 1


def signature_defs(path, tag="serve"):
    """`{name: SignatureDef}` of the meta graph tagged `tag` in `path/saved_model.pb`."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if tag in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"SavedModel at {path} has no meta graph tagged {tag!r}")


def example_input(tensor_info, batch_size, content="random", seed=0, image_size=None):
    """A numpy input for a signature input: `batch_size` examples of `content`.

    Args:
        tensor_info: `TensorInfo` of the input (its dtype and shape, `-1` for any size).
        batch_size: int. Replaces an unknown first dimension.
        content: `"grey"` (uint8 128, float 0.5) or `"random"` (uniform uint8, or
            floats in [0, 1)). Defaults to `"random"`.
        seed: int. Seed of the random content. Defaults to 0.
        image_size: int or None. Replaces the other unknown dimensions. Defaults to
            `WARMUP_IMAGE_SIZE`.
    """
    dtype = tf.dtypes.as_dtype(tensor_info.dtype)
    if not (dtype.is_integer or dtype.is_floating):
        raise ValueError(f"Warm-up inputs must be numeric. Received: dtype={dtype.name}")
    if tensor_info.tensor_shape.unknown_rank:
        raise ValueError("Warm-up inputs need a known rank. Received: an input of unknown rank")
    size = WARMUP_IMAGE_SIZE if image_size is None else image_size
    dims = [d.size for d in tensor_info.tensor_shape.dim]
    shape = [batch_size if i == 0 and d < 0 else (size if d < 0 else d) for i, d in enumerate(dims)]
    rng = np.random.default_rng(seed)
    if dtype.is_integer:
        high = min(256, dtype.max + 1)
        values = np.full(shape, high // 2) if content == "grey" else rng.integers(0, high, shape)
    else:
        values = np.full(shape, 0.5) if content == "grey" else rng.random(shape)
    return values.astype(dtype.as_numpy_dtype)


def warmup_requests(path):
    """The `PredictionLog` records of `WARMUP_REQUESTS` for each signature of the
    SavedModel at `path` (a list, in signature-name order)."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    for name, signature in sorted(signature_defs(path).items()):
        if name.startswith("__"):  # __saved_model_init_op and the like
            continue
        for seed, (batch_size, content) in enumerate(WARMUP_REQUESTS):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = name
            for key, info in signature.inputs.items():
                value = example_input(info, batch_size, content, seed)
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
    return logs


def write_warmup_requests(path):
    """Writes `path/assets.extra/tf_serving_warmup_requests` for the SavedModel at
    `path` (replacing any); returns how many records it holds."""
    logs = warmup_requests(path)
    target = os.path.join(path, WARMUP_FILE)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tf.io.TFRecordWriter(target + ".tmp") as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    os.replace(target + ".tmp", target)
    return len(logs)


def export_saved_model(model, base_path, version=None, image_shape=(None, None)):
    """Exports `model` to `base_path/<version>/` for TF Serving; returns that path.

    The version holds the SavedModel and its warm-up records (see the module docstring).

    Args:
        model: a Keras model mapping raw pixels (float, 0..255) to logits; every
            tfposenc `Task` does, with the normalisation of its training data inside.
        base_path: the model's base path (one integer subdirectory per version).
        version: int >= 1 or None (the next free version). An existing version is never
            overwritten.
        image_shape: `(height, width)` the signature accepts; None entries accept any
            size (warm-up requests then use `WARMUP_IMAGE_SIZE`). Defaults to
            `(None, None)`.
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
        write_warmup_requests(staging)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
