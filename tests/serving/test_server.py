import base64
import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from serving import client
from tests.serving.savedmodels import ROOT, Server, call, images, write_version


def post(url, body, raw=False):
    return call(url, body, raw)


def get(url):
    return call(url)


def test_status_and_metadata(server):
    code, body = get(f"{server.url}/v1/models/tiny")
    assert code == 200
    assert body["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert get(f"{server.url}/v1/models/tiny/versions/1")[0] == 200
    code, meta = get(f"{server.url}/v1/models/tiny/metadata")
    assert code == 200 and meta["model_spec"]["version"] == "1"
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "pooled_features", "__saved_model_init_op"}
    images_info = signatures["serving_default"]["inputs"]["images"]
    assert images_info["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images_info["tensor_shape"]["dim"]] == ["-1", "16", "16", "3"]
    assert set(signatures["serving_default"]["outputs"]) == {"probabilities", "logits", "classes"}


def test_predictions_equal_saved_model_load(server, base_path):
    x = images(5)
    reference = tf.saved_model.load(os.path.join(base_path, "1")).signatures["serving_default"](
        images=tf.constant(x)
    )
    rows = client.predict(server.url, "tiny", x)
    assert len(rows) == 5
    np.testing.assert_allclose(
        [r["probabilities"] for r in rows], reference["probabilities"].numpy(), rtol=1e-5, atol=1e-6
    )
    assert [r["classes"] for r in rows] == reference["classes"].numpy().tolist()
    columns = client.predict(server.url, "tiny", x, columnar=True)
    np.testing.assert_allclose(columns["logits"], reference["logits"].numpy(), rtol=1e-5, atol=1e-5)
    pooled = client.predict(server.url, "tiny", x[:2], version=1, signature_name="pooled_features")
    assert np.asarray(pooled).shape == (2, 16)


def test_b64_png_images(server, base_path):
    from PIL import Image

    x = images(2, seed=3)
    encoded = []
    for image in x:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append({"b64": base64.b64encode(buffer.getvalue()).decode()})
    code, body = post(f"{server.url}/v1/models/tiny:predict", {"instances": encoded})
    assert code == 200
    direct = client.predict(server.url, "tiny", x)
    np.testing.assert_allclose(
        [r["logits"] for r in body["predictions"]], [r["logits"] for r in direct], rtol=1e-6
    )


BAD = [
    (b"{not json", 400, "JSON Parse error"),
    ({"instances": [[0]], "inputs": [[0]]}, 400, "both 'instances' and 'inputs'"),
    ({"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances'"),
    (
        {"instances": images(1).tolist(), "signature_name": "nope"},
        400,
        'signature name: "nope" not found',
    ),
    ({"instances": (images(1) / 2.0 + 0.25).tolist()}, 400, "input 'images': expected dtype uint8"),
    ({"instances": (images(1).astype(int) + 300).tolist()}, 400, "out of range for dtype uint8"),
    (
        {"instances": images(1)[:, :8].tolist()},
        400,
        r"input 'images': expected shape \[-1, 16, 16, 3\], received shape \[1, 8, 16, 3\]",
    ),
    (
        {"inputs": {"pixels": images(1).tolist()}},
        400,
        r"input size does not match signature: 1!=1 len\(\{pixels\}\) != len\(\{images\}\)\. "
        r"Sent extra: \{pixels\}\. Missing but required: \{images\}\.",
    ),
    ({"instances": [[1, 2], [3]]}, 400, "rectangular"),
    ({"instances": [{"b64": "%%%"}]}, 400, "invalid base64"),
]


@pytest.mark.parametrize("body, status, match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_requests_get_their_status_and_server_survives(server, body, status, match):
    import re

    code, reply = post(f"{server.url}/v1/models/tiny:predict", body, raw=isinstance(body, bytes))
    assert code == status
    assert re.search(match, reply["error"]), reply
    assert len(client.predict(server.url, "tiny", images(1))) == 1


def test_not_found_and_too_large(server):
    code, reply = get(f"{server.url}/v1/models/missing")
    assert code == 404 and "missing" in reply["error"]
    code, reply = post(
        f"{server.url}/v1/models/tiny/versions/7:predict", {"instances": images(1).tolist()}
    )
    assert code == 404 and "Specific(tiny, 7)" in reply["error"]
    assert get(f"{server.url}/v1/models/tiny/versions/7")[0] == 404
    code, reply = post(f"{server.url}/v1/models/tiny:predict", {"instances": images(80).tolist()})
    assert code == 413 and "exceeds the limit" in reply["error"]
    assert len(client.predict(server.url, "tiny", images(2))) == 2


def test_client_reports_errors_readably(server):
    with pytest.raises(client.ServingError) as error:
        client.predict(server.url, "missing", images(1))
    assert error.value.status == 404 and "Servable not found" in str(error.value)
    with pytest.raises(client.ServingError) as error:
        client.predict(server.url, "tiny", images(1), signature_name="nope")
    assert error.value.status == 400 and "nope" in str(error.value)


def test_client_command_line(server, tmp_path):
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(images(1)[0]).save(path)
    env = dict(os.environ, PYTHONPATH=ROOT)

    def run_client(model_name, *flags):
        command = [sys.executable, "-m", "serving.client", "--url", server.url, *flags]
        return subprocess.run(
            [*command, "--model_name", model_name, str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run_client("tiny")
    assert done.returncode == 0, done.stderr
    assert str(path) in done.stdout and "%" in done.stdout
    assert "indices of the model's `probabilities` output" in done.stdout
    done = run_client("nope")
    assert done.returncode == 1 and "HTTP 404" in done.stderr
    # an image of another size than the model's input: refused, or resized with a warning
    Image.fromarray(images(1, size=24)[0]).save(path)
    done = run_client("tiny")
    assert done.returncode == 1 and "is 24x24 pixels, the model takes 16x16" in done.stderr
    done = run_client("tiny", "--resize")
    assert done.returncode == 0 and "warning: resizing" in done.stderr, done.stderr


def test_concurrent_load(server):
    errors, done = [], []
    x = images(1).tolist()

    def worker():
        for _ in range(200):
            try:
                code, body = post(f"{server.url}/v1/models/tiny:predict", {"instances": x})
                if code != 200 or len(body["predictions"]) != 1:
                    errors.append(code)
                else:
                    done.append(1)
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(done) == 1600


def test_new_version_is_picked_up_without_failed_requests(tmp_path):
    base = tmp_path / "model"
    write_version(str(base), 0)
    server = Server(
        "--model_name",
        "m",
        "--model_base_path",
        str(base),
        "--file_system_poll_wait_seconds",
        "0.5",
    )
    stop, failures, versions = threading.Event(), [], set()
    x = images(1)

    def hammer(api):
        while not stop.is_set():
            try:
                if api == "rest":
                    client.predict(server.url, "m", x)
                    meta = client.metadata(server.url, "m")
                else:
                    client.grpc_predict(server.grpc_target, "m", x, input_name="images")
                    meta = client.grpc_metadata(server.grpc_target, "m")
                versions.add((api, meta["model_spec"]["version"]))
            except Exception as error:  # noqa: BLE001
                failures.append(repr(error))

    threads = [threading.Thread(target=hammer, args=(api,)) for api in ("rest", "grpc")]
    for t in threads:
        t.start()
    time.sleep(1.0)
    write_version(str(base), 1)
    written = time.time()
    while (
        time.time() - written < 30
        and client.metadata(server.url, "m")["model_spec"]["version"] != "2"
    ):
        time.sleep(0.05)
    picked_up = time.time() - written
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    status = client.status(server.url, "m")["model_version_status"]
    code, _ = server.stop()
    assert failures == []
    assert versions == {(api, v) for api in ("rest", "grpc") for v in ("1", "2")}
    assert picked_up < 0.5 + 5.0  # poll interval plus the time to load a SavedModel
    assert len(status) == 2
    assert status[0]["version"] == "2" and status[0]["state"] == "AVAILABLE"
    assert {s["version"]: s["state"] for s in status}["1"] == "END"
    assert code == 0


def test_model_config_file_serves_several_models(tmp_path, base_path):
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "a" base_path: "{base_path}" model_platform: "tensorflow" }}\n'
        f"  config {{\n    name: 'b'\n    base_path: '{base_path}'\n  }}\n"
        "}\n"
    )
    server = Server("--model_config_file", str(config))
    try:
        assert client.status(server.url, "a")["model_version_status"][0]["state"] == "AVAILABLE"
        assert len(client.predict(server.url, "b", images(1))) == 1
    finally:
        server.stop()


def test_server_refuses_bad_flags(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.server",
            "--model_name",
            "x",
            "--model_base_path",
            str(tmp_path / "none"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "not a directory" in done.stderr


@pytest.mark.parametrize(
    "flag", ["--tensorflow_intra_op_parallelism", "--tensorflow_inter_op_parallelism"]
)
def test_negative_thread_counts_are_refused(base_path, flag):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "serving.server", "--model_base_path", base_path, flag, "-1"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"{flag} must be >= 0, received -1" in done.stderr


def test_thread_flags_reach_tensorflow(base_path):
    server = Server(
        "--model_name", "tiny", "--model_base_path", base_path, "--tensorflow_intra_op_parallelism",
        "1", "--tensorflow_inter_op_parallelism", "2", grpc=False,
    )  # fmt: skip
    status, reply = post(server.url + "/v1/models/tiny:predict", {"instances": images(2).tolist()})
    code, output = server.stop()
    assert code == 0 and "TensorFlow threads per op: 1, ops at once: 2" in output
    assert status == 200, reply
    from serving import malloc

    assert ("glibc malloc: mmap threshold 32 MiB" in output) == malloc.tune()


def run_module(module, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


BAD_FLAGS = [
    ("serving.server", ["--port", "x"], "--port"),
    ("serving.server", ["--model_base_path", ".", "--rest_api_timeout_in_ms", "0"], "--rest_api"),
    ("serving.server", ["--enable_model_warmup", "maybe"], "--enable_model_warmup"),
    ("serving.server", ["--no_such_flag", "1"], "--no_such_flag"),
    ("serving.server", [], "--model_base_path"),
    ("serving.client", ["--model_name", "m", "--top", "x", "a.png"], "--top"),
    ("serving.client", ["--model_name", "m", "--top", "0", "a.png"], "--top"),
    ("serving.client", ["a.png"], "--model_name"),
]


@pytest.mark.parametrize("module, args, flag", BAD_FLAGS, ids=[" ".join(b[1]) for b in BAD_FLAGS])
def test_a_bad_flag_gets_one_error_line_naming_it(module, args, flag):
    done = run_module(module, *args)
    assert done.returncode == 2 and done.stderr.startswith(f"python -m {module}: error: "), (
        done.stderr
    )
    assert done.stderr.count("\n") == 1 and flag in done.stderr, done.stderr


def test_help_exits_0_and_every_client_flag_is_described():
    from serving.client import build_parser

    for module in ("serving.server", "serving.client"):
        assert run_module(module, "-h").returncode == 0
    actions = [a for a in build_parser()._actions if a.dest != "help"]
    assert actions and all(a.help for a in actions), [a.dest for a in actions if not a.help]


def test_labels_must_point_at_served_versions(tmp_path, base_path):
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base_path}" '
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 5 } } }'
    )
    done = run_module("serving.server", "--model_config_file", str(config), "--port", "0")
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "python -m serving.server: error: --model_config_file: version label 'canary' of model "
        "'m' points at version 5, which is not served (served: [1]) (see --help)"
    ), done.stderr


def test_a_base_path_holding_no_version_is_warned_about(base_path):
    server = Server("--model_name", "m", "--model_base_path", os.path.join(base_path, "1"))
    code, output = server.stop()
    assert code == 0
    assert f"base path {os.path.join(base_path, '1')} holds no version directory" in output
    assert (
        f"looks like a version directory itself: serve its parent (--model_base_path {base_path})"
        in output
    )
