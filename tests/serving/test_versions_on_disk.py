"""The versions on disk, changed under a running server (issue "Hardening"): rollback, a
re-created version, a name that is no number, broken versions retried a bounded number of
times."""

import os
import shutil
import time

import numpy as np
import tensorflow as tf

from serving import client
from tests.serving.savedmodels import Server, call, images, wait_for, write_version


def versions_served(server, name="m"):
    code, body = call(f"{server.url}/v1/models/{name}")
    if code != 200:
        return {}
    return {int(s["version"]): s for s in body["model_version_status"]}


def test_version_set_on_disk_is_followed(tmp_path):
    base = tmp_path / "m"
    write_version(str(base), 1, version=1)
    write_version(str(base), 2, version=2)
    os.makedirs(base / "²")
    shutil.copy(base / "1" / "saved_model.pb", base / "²" / "saved_model.pb")
    server = Server(
        "--model_name", "m", "--model_base_path", str(base),
        "--file_system_poll_wait_seconds", "0.3", grpc=False,
    )  # fmt: skip
    x = images(2, seed=4)

    def logits(version):
        module = tf.saved_model.load(str(base / str(version)))
        return module.signatures["serving_default"](images=tf.constant(x))["logits"].numpy()

    def served_logits():
        code, body = call(f"{server.url}/v1/models/m:predict", {"inputs": x.tolist()})
        return np.asarray(body["outputs"]["logits"]) if code == 200 else code

    try:
        v1, v2 = logits(1), logits(2)
        np.testing.assert_allclose(served_logits(), v2, rtol=1e-6)
        # rollback: delete the serving version, the previous one answers
        shutil.rmtree(base / "2")
        start = time.time()
        assert wait_for(lambda: np.allclose(served_logits(), v1, rtol=1e-6), 10)
        assert time.time() - start < 0.3 + 5
        states = versions_served(server)
        assert states[1]["state"] == "AVAILABLE" and states[2]["state"] == "END"
        # a re-created version number with another model is reloaded
        write_version(str(base), 7, version=1)
        v1_new = logits(1)
        assert wait_for(lambda: np.allclose(served_logits(), v1_new, rtol=1e-6), 10)
        # the poll thread survived '²' all along: a new version is picked up
        write_version(str(base), 3, version=3)
        assert wait_for(lambda: versions_served(server).get(3, {}).get("state") == "AVAILABLE", 10)
        # deleting every version unloads everything
        for version in ("1", "3"):
            shutil.rmtree(base / version)
        assert wait_for(lambda: isinstance(served_logits(), int), 10)
        assert served_logits() == 404
        assert {s["state"] for s in versions_served(server).values()} == {"END"}
    finally:
        code, output = server.stop()
    assert code == 0 and "Traceback" not in output, output


def test_broken_newest_version_is_retried_a_bounded_number_of_times(tmp_path):
    base = tmp_path / "m"
    write_version(str(base), 1, version=1)
    server = Server(
        "--model_name", "m", "--model_base_path", str(base),
        "--file_system_poll_wait_seconds", "0.2", "--max_num_load_retries", "2",
        "--load_retry_interval_micros", "200000", grpc=False,
    )  # fmt: skip
    try:
        os.makedirs(base / "2")
        (base / "2" / "saved_model.pb").write_bytes(b"garbage")
        assert wait_for(lambda: versions_served(server).get(2, {}).get("state") == "END", 10)
        status = versions_served(server)
        assert status[2]["status"]["error_code"] != "OK"
        assert "attempt 3 of 3" in status[2]["status"]["error_message"]
        assert status[1]["state"] == "AVAILABLE"
        assert len(client.predict(server.url, "m", images(1))) == 1
        time.sleep(1.0)  # no further attempts
        # a version with truncated variables: the same, and version 1 keeps serving
        shutil.copytree(base / "1", base / "3")
        data = base / "3" / "variables" / "variables.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[:10])
        assert wait_for(lambda: versions_served(server).get(3, {}).get("state") == "END", 10)
        assert versions_served(server)[1]["state"] == "AVAILABLE"
        assert client.metadata(server.url, "m")["model_spec"]["version"] == "1"
    finally:
        code, output = server.stop()
    assert output.count("version: 2} failed") == 3, output
    assert code == 0
