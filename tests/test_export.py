import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfposenc.export import export_saved_model
from tfposenc.models import Classifier, GAPNet, ResNetBackbone

MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)


def images(n=4, size=16):
    return np.random.default_rng(0).integers(0, 256, size=(n, size, size, 3)).astype("uint8")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return GAPNet(ResNetBackbone(width=4, stem="cifar"), 5, mean=MEAN, std=STD)


def test_reloaded_export_matches_keras_model(model, tmp_path):
    path = export_saved_model(model, str(tmp_path), image_shape=(16, 16))
    assert path == os.path.join(str(tmp_path), "1")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "pooled_features"}
    x = images()
    out = loaded.signatures["serving_default"](images=tf.constant(x))
    pixels = x.astype("float32")  # the model normalises raw pixels itself
    logits = keras.ops.convert_to_numpy(model(pixels))
    predicted = tf.nn.softmax(model.predict(pixels, verbose=0)).numpy()
    assert np.max(np.abs(out["probabilities"].numpy() - predicted)) <= 1e-5
    expected = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["logits"].numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["classes"].numpy(), np.argmax(logits, -1))
    pooled = loaded.signatures["pooled_features"](images=tf.constant(x))["pooled_features"]
    np.testing.assert_allclose(
        pooled.numpy(),
        keras.ops.convert_to_numpy(model.pooled_features(pixels)),
        rtol=1e-4,  # traced vs eager float32 sums
        atol=1e-5,
    )
    # The normalisation is the model's: the same pixels, normalised by hand, through
    # the un-normalised network give the same logits.
    raw = GAPNet(model.backbone, 5, name="raw")
    raw.head_conv.set_weights(model.head_conv.get_weights())
    by_hand = (x / 255.0 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(raw(by_hand.astype("float32"))), logits, rtol=1e-4, atol=1e-4
    )
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 16, 16, 3]


def test_versions_count_up_and_never_overwrite(model, tmp_path):
    assert export_saved_model(model, str(tmp_path)).endswith("1")
    assert export_saved_model(model, str(tmp_path)).endswith("2")
    assert sorted(os.listdir(tmp_path)) == ["1", "2"]
    with pytest.raises(ValueError, match="already exists"):
        export_saved_model(model, str(tmp_path), version=2)
    with pytest.raises(ValueError, match="Received: version=0"):
        export_saved_model(model, str(tmp_path), version=0)


def test_failed_export_leaves_nothing(model, tmp_path, monkeypatch):
    def broken(self, path, **kwargs):
        os.makedirs(os.path.join(path, "variables"))
        raise RuntimeError("disk full")

    # The backend's archive class (TFExportArchive) is what export_saved_model creates.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(model, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_classifier_export_has_both_signatures(tmp_path):
    model = Classifier(ResNetBackbone(width=2, stem="cifar"), 3)
    loaded = tf.saved_model.load(export_saved_model(model, str(tmp_path)))
    out = loaded.signatures["serving_default"](images=tf.constant(images(2, 8)))
    assert out["probabilities"].shape == (2, 3)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)


def read_warmup(path):
    from tensorflow_serving.apis import prediction_log_pb2

    file = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(file)
    ]


def test_export_carries_warmup_requests_that_replay(model, tmp_path):
    path = export_saved_model(model, str(tmp_path), image_shape=(16, 16))
    logs = read_warmup(path)
    requests = [log.predict_log.request for log in logs]
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    by_signature = {}
    for request in requests:
        images = tf.make_ndarray(request.inputs["images"])
        by_signature.setdefault(request.model_spec.signature_name, []).append(images)
    assert sorted(by_signature) == ["pooled_features", "serving_default"]
    for batches in by_signature.values():
        assert [b.shape for b in batches] == [(1, 16, 16, 3), (1, 16, 16, 3), (8, 16, 16, 3)]
        assert all(b.dtype == np.uint8 for b in batches)
        assert np.all(batches[0] == 128)  # mid-grey
        assert len(np.unique(batches[2])) > 200  # random pixels
    loaded = tf.saved_model.load(path)
    for request in requests:
        signature = loaded.signatures[request.model_spec.signature_name]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        outputs = signature(**inputs)
        for value in outputs.values():
            assert value.shape[0] == inputs["images"].shape[0]
            assert np.all(np.isfinite(value.numpy()))
        if request.model_spec.signature_name == "serving_default":
            pixels = inputs["images"].numpy().astype("float32")
            np.testing.assert_allclose(
                outputs["logits"].numpy(),
                keras.ops.convert_to_numpy(model(pixels)),
                rtol=1e-5,
                atol=1e-5,
            )
    # Nothing but the versions is left in the base path: the file was staged with them.
    assert os.listdir(tmp_path) == ["1"]


def test_warmup_uses_the_default_size_for_any_size_signatures(tmp_path):
    from tfposenc.export import WARMUP_IMAGE_SIZE

    model = Classifier(ResNetBackbone(width=2, stem="cifar"), 3)
    logs = read_warmup(export_saved_model(model, str(tmp_path)))
    shapes = {tf.make_ndarray(log.predict_log.request.inputs["images"]).shape for log in logs}
    size = WARMUP_IMAGE_SIZE
    assert shapes == {(1, size, size, 3), (8, size, size, 3)}


def test_failed_warmup_leaves_nothing(model, tmp_path, monkeypatch):
    import tfposenc.export as export_module

    def broken(path):
        raise ValueError("no warm-up")

    monkeypatch.setattr(export_module, "write_warmup_requests", broken)
    with pytest.raises(ValueError, match="no warm-up"):
        export_saved_model(model, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_the_version_rule_of_the_library_and_of_the_server_agree():
    import serving.repository
    from tfposenc.export import is_version_name

    names = ["1", "0", "007", "123456789012345678", "1234567890123456789", "", "-1", "1.0",
             " 1", "1 ", "１", "٣", "v1", ".push-1", "2\n", "+3"]  # fmt: skip
    server = [serving.repository.VERSION_NAME.fullmatch(n) is not None for n in names]
    assert [is_version_name(n) for n in names] == server
    assert server[:4] == [True] * 4 and not any(server[4:])
