import json

import numpy as np
import orjson
import pytest

from serving import fastjson


def plain(tree):
    """The tree with numpy arrays turned into lists, for comparison with orjson's."""
    if isinstance(tree, np.ndarray):
        return tree.tolist()
    if isinstance(tree, dict):
        return {k: plain(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [plain(v) for v in tree]
    return tree


def ragged_variants(array):
    """Texts of `array` with its first row shortened, lengthened or nested one level
    deeper (ragged unless the array has a single row)."""
    text = json.dumps(array.tolist(), separators=(",", ":"))
    first = text.index("]")
    yield text[: text.rindex(",", 0, first)] + text[first:]  # drop the first row's last number
    yield text[:first] + ",7" + text[first:]  # one more number in the first row
    yield text.replace("[", "[[", 1).replace("]", "]]", 1)


SHAPES = [(1, 24, 24, 3), (2, 9, 9, 3), (1500,), (40, 40), (3, 500), (1, 1, 1200)]


@pytest.mark.parametrize("shape", SHAPES)
def test_rectangular_arrays_come_back_as_numpy_with_orjsons_values(shape):
    rng = np.random.default_rng(len(shape))
    array = rng.integers(-300, 300, size=shape)
    for separators in ((",", ":"), (", ", ": ")):
        body = json.dumps({"instances": array.tolist(), "k": 1}, separators=separators).encode()
        tree = fastjson.loads(body)
        assert isinstance(tree["instances"], np.ndarray)
        assert tree["instances"].shape == shape
        assert plain(tree) == orjson.loads(body)


@pytest.mark.parametrize("shape", SHAPES)
def test_ragged_arrays_are_left_to_orjson(shape):
    array = np.random.default_rng(7).integers(0, 256, size=shape)
    for text in ragged_variants(array):
        body = ('{"instances": ' + text + "}").encode()
        expected = orjson.loads(body)["instances"]
        got = fastjson.loads(body)["instances"]
        try:
            rectangular = np.array(expected).dtype != object
        except ValueError:  # numpy refuses ragged nesting
            rectangular = False
        assert isinstance(got, np.ndarray) == rectangular
        assert plain(got) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": []}',
        b'{"a": [[]], "b": [[], []]}',
        b"[" + b",".join([b"1"] * 2000) + b",1.5]",  # a float: not an integer array
        b"[" + b",".join([b"9223372036854775807"] * 600) + b"]",  # saturated int64
        b"[" + b",".join([b"99999999999999999999"] * 600) + b"]",  # beyond int64
        b"[[" + b",".join([b"1"] * 600) + b"],\n[" + b",".join([b"2"] * 600) + b"]]",
        b'{"x": [' + b",".join([b"1"] * 1200) + b'], "y": "[1,2,3]"}',
        b"[ " + b",".join([b"1"] * 1200) + b" ]",
        b"[1 , 2 ," + b" , ".join([b"-3"] * 600) + b"]",
        b"[[" + b",".join([b"1"] * 600) + b"] ,[" + b",".join([b"2"] * 600) + b"]]",
    ],
)
def test_edge_cases_parse_as_orjson_does(body):
    assert plain(fastjson.loads(body)) == orjson.loads(body)


ONES = b",".join([b"1"] * 1200)


@pytest.mark.parametrize(
    "body",
    [
        b"[" + ONES,
        b"[" + ONES + b",]",
        b"[1-2" + b"-3" * 600 + b"]",  # one "element" that is not a number
        b"[1 2," + ONES + b"]",  # a space inside a number
        b"[--1," + ONES + b"]",
        b"[1,," + ONES + b"]",
        b"[[" + ONES + b"][" + ONES + b"]]",  # a missing comma between rows
        # found in review: numpy reads a blank field as 0 and "- 1" as -1, and digits
        # or "-" next to a bracket vanish from the bracket skeleton
        b"[1, ,2," + ONES + b"]",
        b"[ ,1," + ONES + b"]",
        b"[- 1," + ONES + b"]",
        b"[1,- 1," + ONES + b"]",
        b"[01,01," + ONES + b"]",
        b"[[" + ONES + b"]5]",
        b"[[" + ONES + b"],3[" + ONES + b"]]",
        b"[-[" + ONES + b"]]",
    ],
)
def test_invalid_json_raises_orjsons_error(body):
    with pytest.raises(orjson.JSONDecodeError):
        fastjson.loads(body)


@pytest.mark.parametrize(
    "skeleton, shape",
    [
        (b"[]", [1]),
        (b"[,,]", [3]),
        (b"[[],[]]", [2, 1]),
        (b"[[,],[,],[,]]", [3, 2]),
        (b"[[[,],[,]],[[,],[,]]]", [2, 2, 2]),
        (b"[[,],[,,]]", None),
        (b"[[,],[]]", None),
        (b"[[,][,]]", None),
        (b"[[,],[,]", None),
        (b"[[[,],[,]],[[,],[,],[,]]]", None),
        (b"[[,],[,]]]", None),
    ],
)
def test_skeleton_shape_by_hand(skeleton, shape):
    assert fastjson._skeleton_shape(skeleton) == shape


def test_parsing_on_many_threads_leaves_the_warning_filters_alone():
    import threading
    import warnings

    before = list(warnings.filters)
    good = b"[" + ONES + b"]"
    bad = b"[1-2" + b"-3" * 600 + b"]"

    def work(text):
        for _ in range(200):
            fastjson.int_array(text)

    threads = [threading.Thread(target=work, args=(t,)) for t in (good, good, bad, bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before
    assert fastjson.int_array(bad) is None
