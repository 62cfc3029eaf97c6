import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import client
from tests.serving.savedmodels import (
    Server,
    TinyClassifier,
    call,
    images,
    save,
    wait_for,
    write_version,
    write_warmup,
)


class Counting(TinyClassifier):
    """A classifier that also answers how many times it was called before."""

    def __init__(self, seed):
        super().__init__(seed)
        self.calls = tf.Variable(0, dtype=tf.int64)

    def _serve(self, images):
        outputs = super()._serve(images)
        outputs["calls"] = tf.fill(tf.shape(images)[:1], self.calls.assign_add(1))
        return outputs


def test_warmup_replayed_before_available_and_a_bad_file_keeps_the_old_version(tmp_path):
    base = tmp_path / "m"
    module = Counting(0)
    path = save(module, str(base / "1"), {"serving_default": module.serve})
    warmup = write_warmup(path, [images(1), images(3, seed=1)])
    records = [
        prediction_log_pb2.PredictionLog.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(warmup)
    ]
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    for record in records:
        request = record.predict_log.request
        outputs = loaded(images=tf.constant(tf.make_ndarray(request.inputs["images"])))
        assert outputs["logits"].shape[0] == request.inputs["images"].tensor_shape.dim[0].size
    server = Server(
        "--model_name", "m", "--model_base_path", str(base),
        "--file_system_poll_wait_seconds", "0.2", "--max_num_load_retries", "0", grpc=False,
    )  # fmt: skip
    try:
        # the first request served sees the two warm-up calls (and the one above, in
        # this process's copy, does not count: the server loaded its own)
        (first,) = client.predict(server.url, "m", images(1))
        assert first["calls"] == 3
        version = write_version(str(base), 5, version=2)
        write_warmup(version, [], raw=b"not a TFRecord file")
        assert wait_for(lambda: call(f"{server.url}/v1/models/m/versions/2")[0] == 200, 10)
        states = wait_for(
            lambda: (
                (
                    s := {
                        x["version"]: x
                        for x in call(f"{server.url}/v1/models/m")[1]["model_version_status"]
                    }
                )["2"]["state"]
                == "END"
                and s
            ),
            10,
        )
        assert "warm-up" in states["2"]["status"]["error_message"]
        assert states["1"]["state"] == "AVAILABLE"
        assert client.metadata(server.url, "m")["model_spec"]["version"] == "1"
        assert len(client.predict(server.url, "m", images(2))) == 2
    finally:
        code, output = server.stop()
    assert code == 0 and "2 warm-up requests" in output, output
    assert os.path.exists(warmup)
    np.testing.assert_equal(len(records), 2)
