"""Copies of layers that carry the original's weights."""


class WeightCopier:
    """Calls a fresh layer and copies the original's weights into it once it is built."""

    def __init__(self, original, layer):
        self.original, self.layer, self.copied = original, layer, False

    def __call__(self, *args, **kwargs):
        outputs = self.layer(*args, **kwargs)
        if not self.copied:
            copy_weights(self.original, self.layer)
            self.copied = True
        return outputs


def copy_weights(source, target):
    """Assigns every weight of `source` to the same weight of `target`, in place."""
    old, new = source.weights, target.weights
    if len(old) != len(new) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(old, new)):
        raise ValueError(
            f"Cannot convert layer '{source.name}': the rebuilt layer's weights "
            f"({[tuple(w.shape) for w in new]}) differ from the original's "
            f"({[tuple(w.shape) for w in old]})."
        )
    for a, b in zip(old, new):
        b.assign(a.value)
