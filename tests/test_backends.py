"""The layers and models are backend-agnostic: their tests pass on Keras' JAX backend.

The README promises `keras.ops`-only layers and models; this runs the layer tests and
the model portability tests in a subprocess with `KERAS_BACKEND=jax` (the backend is
fixed when Keras is imported, so it cannot switch inside this process). Checks of
TensorFlow-only paths are skipped there with a reason (see tests/conftest.py).
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX_SUITE = ["tests/layers", "tests/models/test_portability.py"]


def test_layer_and_model_tests_pass_on_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *JAX_SUITE]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
    )
    tail = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 100, tail  # the layer tests really ran
