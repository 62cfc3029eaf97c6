"""Every task fits, predicts and round-trips through `.keras` on the active backend.

Run under TensorFlow by the main suite and under JAX by `tests/test_backends.py`, with
tiny models so that JAX's compilation of each training step stays short.
"""

import keras
import numpy as np
import pytest

from tfposenc.models import (
    AugShift,
    Classifier,
    GAPNet,
    PermuteNet,
    ResNetBackbone,
    Segmenter,
    SortNet,
    SumNet,
)

pytestmark = pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="under TensorFlow, tests/models/test_tasks.py and test_controls.py cover this",
)

STATS = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}


def backbone(**kwargs):
    return ResNetBackbone(18, "cifar", 2, **kwargs)


def data(n=8, size=16, classes=3, dense=False):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(n, size, size, 3)).astype("float32")
    shape = (n, size, size) if dense else (n,)
    return x, rng.integers(0, classes, size=shape).astype("int64")


BUILDERS = {
    "gapnet": lambda: GAPNet(backbone(), 3, **STATS),
    "gapnet1x1": lambda: GAPNet(backbone(), 3, head_kernel_size=1, **STATS),
    "classifier": lambda: Classifier(backbone(), 3, **STATS),
    "permutenet": lambda: PermuteNet(backbone(), 3, seed=1, **STATS),
    "sortnet": lambda: SortNet(backbone(), 3, **STATS),
    "sumnet": lambda: SumNet(backbone(), 3, readout_init="torch", **STATS),
    "aps": lambda: Classifier(backbone(padding_mode="circular", downsampling="aps"), 3),
    "blur": lambda: Classifier(backbone(downsampling="blur"), 3),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_task_fits_predicts_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = data()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    if name != "permutenet":  # a fresh permutation per call: compared below by seed state
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        revived = keras.saving.load_model(path)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(revived.predict(x, verbose=0)),
            keras.ops.convert_to_numpy(model.predict(x, verbose=0)),
            atol=1e-4,
        )
        assert getattr(revived, "mean", None) == getattr(model, "mean", None)


def test_segmenter_fits_on_label_maps():
    keras.utils.set_random_seed(0)
    model = Segmenter(backbone(), 3, head_channels=4, **STATS)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x, y = data(dense=True)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x[:2], verbose=0).shape == (2, 16, 16, 3)


def test_augshift_fits_and_logs_its_terms():
    keras.utils.set_random_seed(0)
    model = AugShift(Classifier(backbone(), 3, **STATS), max_shift=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = data()
    logs = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    assert {"cross_entropy", "latent_mse", "latent_norm"} <= set(logs)
    assert all(np.isfinite(v[0]) for v in logs.values())
