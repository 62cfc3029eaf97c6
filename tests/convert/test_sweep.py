"""Every keras.applications family converts or is refused with a ValueError naming the
layer (issue 33): the sweep of `tests/convert/sweep.py`, pinned to its table.

The families whose sweep takes more than ~10 s on two idle cores are marked slow
(`pytest -m slow tests/convert/test_sweep.py`): DenseNet, EfficientNet,
EfficientNetV2, InceptionResNetV2, InceptionV3, NASNet.
"""

import os
import re

import keras
import pytest

from tests.convert import sweep
from tfposenc.convert import convert_model

SLOW = ("DenseNet", "EfficientNet", "EfficientNetV2", "InceptionResNetV2", "InceptionV3", "NASNet")
README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def family_of(constructor):
    """`ResNet101V2` -> `ResNetV2`, `EfficientNetV2S` -> `EfficientNetV2`, ..."""
    if re.fullmatch(r"ResNet\d+V2", constructor):
        return "ResNetV2"
    prefixes = [f for f in sweep.FAMILIES if constructor.startswith(f)]
    return max(prefixes, key=len) if prefixes else None


def test_every_keras_applications_family_is_swept():
    constructors = [name for name in dir(keras.applications) if name[0].isupper()]
    assert len(constructors) >= 40
    assert {family_of(name) for name in constructors} == set(sweep.FAMILIES)
    for family, (member, _) in sweep.FAMILIES.items():
        assert family_of(member) == family


@pytest.mark.parametrize(
    "family",
    [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in sweep.FAMILIES],
)
def test_family_converts_or_is_refused_cleanly(family):
    model = sweep.build(family)
    sweep.check_exact_copy(model)  # raises unless exact
    for option, (status, reason) in zip(sweep.OPTIONS, sweep.EXPECTED[family]):
        outcome, detail = sweep.check(model, option)  # raises on anything but ValueError
        assert outcome == status, f"{option}: {detail}"
        if reason is not None:
            assert re.search(reason, detail), detail


def test_the_readme_table_has_every_family_with_the_pinned_outcome():
    with open(README) as f:
        rows = {
            line.split("|")[1].split("(")[0].strip(): [c.strip() for c in line.split("|")[3:-1]]
            for line in f
            if line.startswith("| ") and "px) |" in line
        }
    assert set(rows) == set(sweep.FAMILIES)
    for family, cells in rows.items():
        for cell, (status, reason) in zip(cells, sweep.EXPECTED[family]):
            if status == "converts":
                assert cell == "converts", (family, cell)
            elif reason == sweep.SMALL[1]:
                assert cell.startswith("from ") or "map too small" in cell, (family, cell)
            else:
                assert cell.startswith("refused"), (family, cell)


@pytest.mark.parametrize("name, size", [("Xception", 97), ("InceptionV3", 95)])
def test_valid_stride_2_families_are_refused_under_aps_at_any_size(name, size):
    # Issue 33: at 95 / 97 px the refusal came from inside the APS layer, naming no
    # layer; at 96 / 128 px it blamed the input size.
    model = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    with pytest.raises(ValueError, match=r"layer '\w+' .*'valid'.*at any input size"):
        convert_model(model, "circular", "aps")
