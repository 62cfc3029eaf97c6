"""Every Python block of the README runs on its own, as a reader would paste it."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


BLOCKS = _blocks()


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_alone(index):
    namespace = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)  # noqa: S102
    if "ablate" in BLOCKS[index] and "model" in namespace:
        assert namespace["model"].get_layer("ablate").channels == [1, 2]
    if "gapnet.ablate([5, 9])" in BLOCKS[index]:
        assert namespace["gapnet"].ablated_channels == [5, 9]
    if "rank_position_channels" in BLOCKS[index]:
        assert namespace["scores"].max() > 0.0  # real canvases: the flip changes something
        assert {record["selection"] for record in namespace["records"]} >= {"ranked"}
