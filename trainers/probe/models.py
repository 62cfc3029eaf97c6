"""The model named by `--model`, loaded and checked, and its converted copies.

Every refusal is a `ValueError` that names the config field (`model`, `weights`,
`model_kwargs`, `input_size`, `convert_downsampling`) in backticks, so the command line
answers it with one line naming the flag, exit code 2, before the run directory exists.
"""

import json
import os
import socket
import zipfile

import keras

from tfposenc.convert import convert_model

IMAGENET_HOST = ("storage.googleapis.com", 443)
APPLICATIONS = "keras.applications."


def imagenet_reachable(name):
    """Whether ImageNet weights of keras.applications `name` are cached or downloadable."""
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models")
    if os.path.isdir(cache) and any(name.lower() in f.lower() for f in os.listdir(cache)):
        return True
    try:
        socket.create_connection(IMAGENET_HOST, timeout=3).close()
        return True
    except OSError:
        return False


def _application(config):
    name, size = config.model[len(APPLICATIONS) :], config.input_size
    builder = getattr(keras.applications, name, None)
    if not callable(builder) or not name[:1].isupper():
        raise ValueError(
            f"`model` must name a model of keras.applications; it has no {name!r}. "
            f"Received: model={config.model!r}"
        )
    weights, path = config.weights, None
    if weights == "none":
        weights = None
    elif weights == "imagenet":
        if not imagenet_reachable(name):
            raise ValueError(
                "`weights`: imagenet weights are downloaded from "
                f"{IMAGENET_HOST[0]}, which cannot be reached (no network); use --weights "
                "none or a weights file. Received: weights='imagenet'"
            )
    elif not os.path.isfile(weights):
        raise ValueError(
            f"`weights` must be imagenet, none or a file. Received: weights={weights!r}"
        )
    else:
        weights, path = None, config.weights
    kwargs = json.loads(config.model_kwargs)
    try:
        model = builder(weights=weights, include_top=False, input_shape=(size, size, 3), **kwargs)
    except (TypeError, ValueError) as error:
        blamed = "model_kwargs" if kwargs else "input_size"
        raise ValueError(
            f"`{blamed}`: {name} cannot be built at input_size={size} with "
            f"model_kwargs={config.model_kwargs} ({' '.join(str(error).split())})"
        ) from None
    if path is not None:
        try:
            model.load_weights(path)
        except Exception as error:  # h5py, zip and shape errors alike: the file is unusable
            raise ValueError(
                f"`weights`: {path!r} does not hold {name}'s weights ({type(error).__name__}: "
                f"{' '.join(str(error).split())[:300]})"
            ) from None
    return model


def _keras_file(config):
    path = config.model
    if not os.path.isfile(path):
        raise ValueError(f"`model`: no such file. Received: model={path!r}")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise ValueError(
            f"`model`: {path!r} is not a Keras model file (a .keras file is a zip archive)"
        )
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a damaged archive raises JSON, key, type or value errors
        reason = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        raise ValueError(
            f"`model`: {path!r} cannot be loaded as a Keras model ({reason})"
        ) from None


def _keras_hub(config):
    try:
        import keras_hub  # noqa: PLC0415 - optional (tfposenc[hub]), only for keras_hub:PRESET
    except ImportError:
        raise ValueError(
            "`model` keras_hub:PRESET needs keras-hub (pip install tfposenc[hub]). "
            f"Received: model={config.model!r}"
        ) from None
    preset = config.model.split(":", 1)[1]
    try:
        return keras_hub.models.Backbone.from_preset(preset)
    except Exception as error:  # unknown preset, no network
        raise ValueError(
            f"`model`: keras-hub cannot load preset {preset!r} "
            f"({type(error).__name__}: {' '.join(str(error).split())[:300]})"
        ) from None


def check_image_model(model, size):
    """Raises ValueError unless `model` takes one RGB image input, channels last, and
    runs at `size` x `size` pixels; returns the model at that size (wrapped in a new
    input when its own size differs). `Backbone.from_model` then finds its feature map."""
    inputs = model.inputs if isinstance(getattr(model, "inputs", None), list) else None
    if not inputs:
        raise ValueError(
            "`model` must be a functional Keras model (a graph of layers). "
            f"Received: a {type(model).__name__}"
        )
    if len(inputs) != 1:
        shapes = ", ".join(str(tuple(i.shape)) for i in inputs)
        raise ValueError(
            f"`model` must take one image input. Received: a model with {len(inputs)} inputs "
            f"of shapes {shapes}"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ValueError(
            "`model` must take images [batch, height, width, channels]. "
            f"Received: a model whose input has shape {shape}"
        )
    if shape[-1] != 3:
        raise ValueError(
            "`model` must take RGB images, channels last (the probe's digit canvases have 3 "
            f"channels). Received: a model whose input has shape {shape}"
        )
    if tuple(shape[1:3]) != (size, size):
        inputs = keras.Input((size, size, 3))
        try:
            model = keras.Model(inputs, model(inputs), name=model.name)
        except Exception as error:  # a fixed-size layer (Dense, Reshape) refuses the size
            raise ValueError(
                f"`input_size`: the model takes {shape[1]} x {shape[2]} images and cannot run at "
                f"{size} x {size} ({' '.join(str(error).split())[:300]}). "
                f"Received: input_size={size}"
            ) from None
    return model


def load_model(config):
    """The model of `config.model`, at `config.input_size`, checked (see the module)."""
    spec = config.model
    if spec.startswith(APPLICATIONS):
        return check_image_model(_application(config), config.input_size)
    if spec.startswith("keras_hub:"):
        model = _keras_hub(config)
    elif spec.endswith(".keras"):
        model = _keras_file(config)
    else:
        raise ValueError(
            "`model` must be keras.applications.NAME, PATH.keras or keras_hub:PRESET. "
            f"Received: model={spec!r}"
        )
    return check_image_model(model, config.input_size)


def converted(model, padding_mode, downsampling):
    """`convert_model`'s `(model, changes)`; its refusal names the conversion flags."""
    try:
        return convert_model(model, padding_mode, downsampling)
    except ValueError as error:
        raise ValueError(
            f"`convert_downsampling`: the model cannot be converted to {padding_mode} "
            f"padding with {downsampling} downsampling ({' '.join(str(error).split())})"
        ) from None


__all__ = ["check_image_model", "converted", "imagenet_reachable", "load_model"]
