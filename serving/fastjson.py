"""JSON bodies with large integer arrays, parsed without a Python object per number.

A batch of 32 24x24 RGB images is 55,296 numbers; as nested Python lists they cost more
than the model call. `loads` finds each long run of a JSON integer array in the body
(digits, `-`, `,`, `[`, `]`, compact or `", "`-separated), checks that the run is a
rectangular array from its bracket skeleton, converts it with `numpy.fromstring`, keeps
it only if the values serialise back to the same text (spaces aside), and parses the
rest of the body with orjson, where the array becomes a numpy `int64` array.
Anything else (floats, strings, pretty-printed JSON, ragged or invalid arrays) is left
to orjson, so the result and the errors are those of a plain parse.
"""

import os
import re

import numpy as np
import orjson

MIN_RUN = 1024
MAX_DIMS = 32  # numpy's limit is 64; deeper arrays are left to orjson
_RUN = re.compile(rb"\[[0-9\[\],\- ]{%d,}\]" % (MIN_RUN - 2))
_INT64 = np.iinfo(np.int64)
_NONCE = os.urandom(8).hex()


def _skeleton_shape(skeleton):
    """The shape of a rectangular array from its brackets and commas, else `None`.

    The first group at each depth gives that depth's size (a group at depth `d` of a
    `D`-deep array ends with the first run of `D - d + 1` closing brackets); the skeleton
    such a shape implies is then rebuilt with C-level string operations and compared.
    """
    depth = len(skeleton) - len(skeleton.lstrip(b"["))
    if depth == 0 or depth > MAX_DIMS:
        return None
    shape, unit = [], None
    for level in range(depth, 0, -1):
        closing = b"]" * (depth - level + 1)
        end = skeleton.find(closing, level - 1)
        if end < 0:
            return None
        group = skeleton[level - 1 : end + len(closing)]
        if unit is None:  # an empty list also reads as one element: int_array counts values
            count = group.count(b",") + 1
        else:
            count, rest = divmod(len(group) - 1, len(unit) + 1)
            if rest:
                return None
        shape.insert(0, count)
        unit = group
    expected = b"[" + b"," * (shape[-1] - 1) + b"]"
    for count in reversed(shape[:-1]):
        expected = b"[" + b",".join([expected] * count) + b"]"
    return shape if skeleton == expected else None


def int_array(text):
    """A JSON integer array's text as a numpy `int64` array, or `None` if not one.

    Accepted only when the text is exactly the array's canonical JSON (orjson's compact
    serialisation of the parsed values) up to spaces, so every malformed number or
    bracket (`01`, `1-2`, `[1,,2]`, `[[0]5]`, `- 1`, `1 2`, ...) is left to orjson and
    its error. No warning filters are touched (they are process-wide and requests are
    parsed on several threads): numpy's short-read warning is just another refusal.
    """
    if any(c in text for c in (b"\t", b"\n", b"\r", b"- ")):
        return None
    compact = text.translate(None, b" ") if b" " in text else text
    shape = _skeleton_shape(compact.translate(None, b"0123456789-"))
    if shape is None:
        return None
    try:
        # numpy skips whitespace around separators; "1 2" stops it short.
        values = np.fromstring(text.translate(None, b"[]"), dtype=np.int64, sep=",")
    except (ValueError, DeprecationWarning):  # the warning only where filters make it raise
        return None
    if values.size != int(np.prod(shape)):
        return None
    if values.size and (values.max() == _INT64.max or values.min() == _INT64.min):
        return None  # saturated: out of int64's range
    array = values.reshape(shape)
    if orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY) != compact:
        return None
    return array


def _substitute(tree, arrays):
    """Replaces the placeholder strings in `tree` by their arrays; returns how many."""
    found = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, str) and value in arrays:
                node[key] = arrays[value]
                found += 1
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return found


def loads(body):
    """Parses a JSON body; long integer arrays come back as numpy `int64` arrays."""
    if len(body) >= MIN_RUN:
        arrays, pieces, end = {}, [], 0
        for match in _RUN.finditer(body):
            text = match.group()
            text = text[: text.rfind(b"]") + 1]
            array = int_array(text)
            if array is None:
                continue
            key = f"\x00{_NONCE}:{len(arrays)}"
            arrays[key] = array
            pieces += [body[end : match.start()], orjson.dumps(key)]
            end = match.start() + len(text)
        if arrays:
            pieces.append(body[end:])
            try:
                tree = orjson.loads(b"".join(pieces))
            except orjson.JSONDecodeError:
                tree = None
            if isinstance(tree, (dict, list)) and _substitute(tree, arrays) == len(arrays):
                return tree
    return orjson.loads(body)
