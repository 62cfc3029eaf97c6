import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

# Test modules about TensorFlow-only code paths (the fused batch-norm kernel).
TENSORFLOW_ONLY_MODULES = ("test_batch_normalization.py",)
# Exhaustive model grids: under another backend a spread-out sample of them runs.
SAMPLED_MODULES = ("test_backbones.py",)
SAMPLE_EVERY = 6


def pytest_collection_modifyitems(config, items):
    """Under another Keras backend (`KERAS_BACKEND=jax`, see tests/test_backends.py)
    the checks of TensorFlow-only paths are skipped, visibly."""
    for item in items:
        if item.fspath.basename in TENSORFLOW_ONLY_MODULES:
            item.add_marker(pytest.mark.tensorflow_only)
    if keras.backend.backend() == "tensorflow":
        return
    backend = keras.backend.backend()
    skip = pytest.mark.skip(reason=f"TensorFlow-only check; backend {backend}")
    sampled = pytest.mark.skip(
        reason=f"under {backend} one parametrisation in {SAMPLE_EVERY} of this exhaustive "
        "grid runs (each new model compiles anew); the TensorFlow run covers them all"
    )
    seen = {}
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)
        elif item.fspath.basename in SAMPLED_MODULES and hasattr(item, "callspec"):
            index = seen.setdefault(item.originalname, 0)
            seen[item.originalname] = index + 1
            if index % SAMPLE_EVERY:
                item.add_marker(sampled)


@pytest.fixture(autouse=True)
def _reset_keras_state():
    keras.config.set_image_data_format("channels_last")
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.config.set_image_data_format("channels_last")
    keras.mixed_precision.set_global_policy("float32")
