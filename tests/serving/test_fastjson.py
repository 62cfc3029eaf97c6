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


def _mutations(text, rng, count):
    """`count` texts, each `text` with one to three random edits drawn from the
    characters an integer array is made of (insert, delete, replace, swap)."""
    alphabet = b"0123456789-,[] "
    for _ in range(count):
        data = bytearray(text)
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(0, len(data)))
            kind = rng.integers(0, 4)
            char = alphabet[rng.integers(0, len(alphabet))]
            if kind == 0:
                data.insert(at, char)
            elif kind == 1 and len(data) > 1:
                del data[at]
            elif kind == 2:
                data[at] = char
            elif at + 1 < len(data):
                data[at], data[at + 1] = data[at + 1], data[at]
        yield bytes(data)


def _agree(body):
    """fastjson and orjson give the same tree, or both refuse the body."""
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            fastjson.loads(body)
        return False
    got = fastjson.loads(body)
    assert plain(got) == expected, body[:200]
    return isinstance(got.get("x") if isinstance(got, dict) else got, np.ndarray)


@pytest.mark.parametrize("seed", range(6))
def test_randomly_edited_arrays_parse_exactly_as_orjson_parses_them(seed):
    """An independent oracle for the vectorised validation: thousands of near-valid
    texts (one to three edits of a valid array) must give orjson's result or error."""
    rng = np.random.default_rng(seed)
    fast = 0
    for trial in range(60):
        shape = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 4)))
        shape = shape[:-1] + (int(np.ceil(600 / np.prod(shape[:-1]))),)  # >= MIN_RUN chars
        digits = int(rng.choice([1, 3, 9, 17, 18, 19]))
        high = min(10**digits, 2**63 - 1)
        array = rng.integers(-high if trial % 2 else 0, high, size=shape, dtype=np.int64)
        separators = ((",", ":"), (", ", ": "))[trial % 2]
        text = json.dumps(array.tolist(), separators=separators).encode()
        assert _agree(b'{"x": ' + text + b"}") == (digits <= fastjson.MAX_DIGITS)
        for edited in _mutations(text, rng, 25):
            fast += _agree(b'{"x": ' + edited + b"}")
    assert fast > 0  # some edits keep a valid array (e.g. a digit changed) on the fast path


def test_digit_columns_convert_every_width_and_sign():
    values = np.array(
        [0, -0, 7, -7, 10, -10, 99, 100, -101, 12345678, 999999999999999999, -999999999999999999]
        * 100
    )
    text = json.dumps(values.tolist()).encode()
    np.testing.assert_array_equal(fastjson.int_array(text), values)
    assert fastjson.int_array(b"[" + b",".join([b"1234567890123456789"] * 100) + b"]") is None


@pytest.mark.parametrize(
    "text",
    [
        b"[[1,]2,[3,4]]",  # a number outside its row
        b"[0 1]",  # a space between numbers that leaves the count right
        b"[00,1]",
        b"[-01,1]",
        b"[1-,1]",
        b"[-,1]",
        b"[1,-]",
    ],
)
def test_small_invalid_array_texts_are_refused(text):
    assert fastjson.int_array(text) is None


def test_runs_are_those_of_the_reference_expression():
    import re

    reference = re.compile(rb"\[[0-9\[\],\- ]{%d,}\]" % (fastjson.MIN_RUN - 2))
    rng = np.random.default_rng(3)
    alphabet = b'0123456789-,[] "ab:{}\n'
    weights = np.array([8] * 10 + [2, 6, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1], float)
    for _ in range(200):
        size = int(rng.integers(1, 6000))
        body = bytes(rng.choice(list(alphabet), size=size, p=weights / weights.sum()))
        expected = []
        for match in reference.finditer(body):
            text = match.group()
            expected.append((match.start(), match.start() + text.rfind(b"]") + 1))
        assert list(fastjson._runs(body)) == expected


@pytest.mark.parametrize("outer", [1021, 1022, 1023, 1024])
def test_depth_limit_is_orjsons_with_an_array_inside(outer):
    """The placeholder that stands for an array is one level; the array is `ndim`."""
    array = b"[[" + b",".join([b"1"] * 600) + b"]]"  # two levels
    body = b'{"a":' * (outer - 1) + array + b"}" * (outer - 1)
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            fastjson.loads(body)
        assert outer + 1 > fastjson.MAX_DEPTH
        return
    got = fastjson.loads(body)
    for _ in range(outer - 1):  # walked down without recursion
        got, expected = got["a"], expected["a"]
    assert isinstance(got, np.ndarray) and got.tolist() == expected


def test_numbers_of_every_width_convert_without_small_integer_wraparound():
    # numpy 1.x keeps uint8 * int64-scalar in uint8: the columns are widened explicitly
    values = np.array([123456, 999999999, -765432109876543210] * 300)
    body = json.dumps({"x": values.tolist()}).encode()
    np.testing.assert_array_equal(fastjson.loads(body)["x"], values)
