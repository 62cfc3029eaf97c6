"""`convert_model`: another border mode and another downsampling for any functional model."""

import keras

from tfposenc.convert.converter import Converter
from tfposenc.convert.graph import structure
from tfposenc.layers.padding2d import PADDING_MODES
from tfposenc.validation import check_choice
from tfposenc.vocabulary import DOWNSAMPLING


def convert_model(
    model,
    padding_mode="zero",
    downsampling="stride",
    blur_filter_size=4,
    blur_padding_mode=None,
):
    """Rebuilds a functional Keras image model with another border and downsampling rule.

    The result has the same inputs and outputs, the same layer names where a layer is
    kept, and the original weights copied (not re-initialised). What changes:

    - Borders: every `Conv2D`, `DepthwiseConv2D`, `SeparableConv2D` and pool with
      `padding="same"` becomes `Padding2D(pads, padding_mode)` then the layer with
      `padding="valid"`, where `pads` is exactly TensorFlow's "same" geometry
      (asymmetric at stride 2: one pixel less on the top/left); every `ZeroPadding2D`
      (or zero `Padding2D`) that feeds only `"valid"` convs, pools and crops (NASNet's
      pad-then-crop shift) becomes `Padding2D` with the same pads in `padding_mode`;
      a tfposenc `PaddedConv2D`
      takes `padding_mode` itself. With `"zero"` nothing changes.
    - `downsampling="blur"` (Zhang, 2019): a strided max-pool becomes the same pool at
      stride 1 then `BlurPool2D`; a strided conv becomes the conv at stride 1 whose
      output is blurred and subsampled by `BlurPool2D`, after the activation when the
      conv is followed directly by a normalisation and an activation, else right after
      the conv; an average pool whose window equals its stride (DenseNet's 2x2) becomes
      `BlurPool2D`, a wider one runs at stride 1 before `BlurPool2D`.
    - `downsampling="aps"` (Chaman and Dokmanic, 2021): every stride-2 layer runs at
      stride 1 with TensorFlow's stride-1 "same" pad in `padding_mode` (a zero pad in
      front of a `"valid"` window is replaced by it, so the map stays even) and is
      subsampled by `AdaptivePolyphaseSampling2D` where blur would go. Branches that
      meet again at an `Add` (or any layer with several 4D inputs) are sampled at one
      index, chosen on the branch with the widest window (the main branch of a residual
      block; its shortcut takes that index, as `ResNetBackbone` does). With
      `padding_mode="circular"` and an input size divisible by the total stride, the
      globally pooled output is then invariant to circular shifts of the input.

    Every other layer is copied with its weights, if it has no border or sampling grid
    of its own: layers that act position by position (activations, normalisations over
    channels, `Add`, `Concatenate`, `Dense`, `Rescaling`, `Normalization`, dropout),
    global pools, `Flatten` (a read-out of every position: its output is not invariant),
    and any layer, `Lambda` or `keras.ops` call whose output follows a circular shift
    of its input map exactly (checked by running it on a random map and on that map
    rolled; see `tfposenc.convert.spatial`).

    Anything the converter cannot convert faithfully raises a `ValueError` that names
    the layer, what cannot be converted and why, never another exception: a layer that
    pads, resamples, crops or slices inside (a custom layer calling `tf.pad`, a slice
    `x[:, 1:]`, `Resizing`, `UpSampling2D`, `Conv2DTranspose`, `Cropping2D`), a custom
    layer holding convs, pools or pads, a `keras.ops` pad or conv called in the graph,
    a zero pad that feeds something other than "valid" windows (under another
    `padding_mode`), unequal strides, a stride-2 "same" conv on an unknown input size,
    a map too small for a reflect or circular pad, an output size that the new
    downsampling would change; under APS also a stride other than 2, a "valid"
    stride-2 window without the matching pad (Inception's and Xception's: no input
    size fits them), a map of odd size, a `BlurPool2D` that subsamples. Nested
    functional and `Sequential` models are converted recursively (an `Add` across a
    nested model's boundary does not share APS indices).

    Args:
        model: a functional or built `Sequential` Keras model, or a tfposenc
            `Backbone` (the result is then a `Backbone` with the same stage names).
        padding_mode: string, one of `"zero"`, `"reflect"`, `"replicate"`,
            `"circular"`. Defaults to `"zero"`.
        downsampling: string, one of `"stride"` (unchanged), `"blur"`, `"aps"`.
            Defaults to `"stride"`.
        blur_filter_size: int in 1..7, `BlurPool2D`'s filter size. Defaults to `4`.
        blur_padding_mode: string or None, `BlurPool2D`'s border mode; None follows
            `padding_mode`, as `ResNetBackbone` does (Zhang's reference blurs with
            `"reflect"`). Defaults to `None`.

    Returns:
        `(converted, changes)`: the new model, and a list of `(layer_name, before,
        after)` string triples, one for every layer replaced or inserted (`before` is
        `"-"` for an inserted layer). `convert_model(m)` returns a copy of `m` and `[]`.

    Example:

    >>> model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    >>> converted, changes = convert_model(model, "circular", "aps")
    >>> changes[0]
    ('conv1_pad', 'ZeroPadding2D(((3, 3), (3, 3)))', "Padding2D(((3, 3), (3, 3)), 'circular')")
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a functional Keras model. Received: model={type(model).__name__}"
        )
    check_choice(padding_mode, PADDING_MODES, "padding_mode")
    check_choice(downsampling, DOWNSAMPLING, "downsampling")
    if blur_padding_mode is not None:
        check_choice(blur_padding_mode, PADDING_MODES, "blur_padding_mode")
    if (
        not isinstance(blur_filter_size, int)
        or isinstance(blur_filter_size, bool)
        or not 1 <= blur_filter_size <= 7
    ):
        raise ValueError(
            "`blur_filter_size` must be an int from 1 to 7. "
            f"Received: blur_filter_size={blur_filter_size!r}"
        )
    if structure(model) is None:
        raise ValueError(
            "`model` must be a functional Keras model (or a Sequential one built with an "
            "Input): a subclassed model has no graph to convert. "
            f"Received: model={type(model).__name__}"
        )
    try:
        converter = Converter(
            model, padding_mode, downsampling, blur_filter_size, blur_padding_mode
        )
        return converter.run()
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - a model it cannot convert: ValueError
        raise ValueError(
            f"Cannot convert model '{model.name}': walking its graph failed "
            f"({type(error).__name__}: {error})."
        ) from error
