"""What a client of the served model sees: the signatures of a SavedModel, compared.

`signature_spec(path)` reads the serving signatures of an exported version (names, and
per input and output its dtype and shape) from `saved_model.pb` without loading the
model; `differences(candidate, served)` lists, one line each, everything a client of the
served version would notice: a signature added or gone, an input or output added or
gone, a dtype or a shape changed (with the image size in words for image inputs).
The push refuses a candidate with differences unless told `allow_signature_change`.
"""

from tensorflow.python.framework import dtypes

from tfposenc.export import signature_defs

INTERNAL = ("__saved_model_init_op",)


def _tensor(info):
    shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    return dtypes.as_dtype(info.dtype).name, shape


def signature_spec(path):
    """`{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}` of the
    exported version at `path` (`-1`: any size)."""
    return {
        name: {
            "inputs": {k: _tensor(v) for k, v in sorted(definition.inputs.items())},
            "outputs": {k: _tensor(v) for k, v in sorted(definition.outputs.items())},
        }
        for name, definition in sorted(signature_defs(path).items())
        if name not in INTERNAL
    }


def _size(shape):
    """`"24x24"` for an image batch shape `[-1, 24, 24, 3]`, else the shape."""
    if shape is not None and len(shape) == 4:
        return "any size" if -1 in shape[1:3] else f"{shape[1]}x{shape[2]}"
    return str(shape)


def differences(candidate, served):
    """One line per difference a client of `served` would meet in `candidate` (both
    `signature_spec` results); [] when they serve the same contract."""
    lines = []
    for name in sorted(set(candidate) | set(served)):
        if name not in candidate:
            lines.append(f"signature {name!r}: served, missing in the candidate")
            continue
        if name not in served:
            lines.append(f"signature {name!r}: new in the candidate, not served now")
            continue
        for side in ("inputs", "outputs"):
            mine, theirs = candidate[name][side], served[name][side]
            for key in sorted(set(mine) | set(theirs)):
                where = f"signature {name!r} {side[:-1]} {key!r}"
                if key not in mine:
                    lines.append(f"{where}: served, missing in the candidate")
                elif key not in theirs:
                    lines.append(f"{where}: new in the candidate, not served now")
                elif mine[key][0] != theirs[key][0]:
                    lines.append(f"{where}: dtype {mine[key][0]}, served {theirs[key][0]}")
                elif mine[key][1] != theirs[key][1]:
                    shape, served_shape = mine[key][1], theirs[key][1]
                    words = ""
                    if side == "inputs" and shape and served_shape and len(shape) == 4:
                        words = f" (input {_size(shape)}, served {_size(served_shape)})"
                    lines.append(f"{where}: shape {shape}, served {served_shape}{words}")
    return lines


__all__ = ["differences", "signature_spec"]
