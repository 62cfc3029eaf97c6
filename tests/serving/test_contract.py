"""TF Serving's REST contract, checked against its official protos."""

import json
import os
import re
import socket

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format, text_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.model_config import parse_model_config
from tests.serving.savedmodels import Server, call, images, write_version


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("contract") / "m"
    for seed in range(3):
        write_version(str(base), seed)
    config = base.parent / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "tiny" base_path: "{base}" }}\n'
        f'  config {{ name: "two" base_path: "{base}"\n'
        "    model_version_policy { latest { num_versions: 2 } }\n"
        '    version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 3 } }\n'
        f'  config {{ name: "all" base_path: "{base}" model_version_policy {{ all {{}} }} }}\n'
        f'  config {{ name: "one" base_path: "{base}"\n'
        "    model_version_policy { specific { versions: 1 } } }\n"
        "}\n"
    )
    server = Server("--model_config_file", str(config), grpc=False)
    yield server, str(base)
    server.stop()


def test_status_and_metadata_parse_into_the_official_protos(served):
    server, base = served
    for name, versions in [("tiny", [3]), ("two", [3, 2]), ("all", [3, 2, 1]), ("one", [1])]:
        code, body = call(f"{server.url}/v1/models/{name}")
        assert code == 200
        status = json_format.Parse(json.dumps(body), get_model_status_pb2.GetModelStatusResponse())
        assert [s.version for s in status.model_version_status] == versions
        assert {s.state for s in status.model_version_status} == {
            get_model_status_pb2.ModelVersionStatus.AVAILABLE
        }
    code, meta = call(f"{server.url}/v1/models/two/versions/2/metadata")
    assert code == 200 and set(meta) == {"model_spec", "metadata"}
    spec = json_format.Parse(json.dumps(meta["model_spec"]), model_pb2.ModelSpec())
    assert (spec.name, spec.version.value, spec.signature_name) == ("two", 2, "")
    signatures = json_format.Parse(
        json.dumps(meta["metadata"]["signature_def"]),
        get_model_metadata_pb2.SignatureDefMap(),
    )
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, ["serve"], os.path.join(base, "2")
        )
    assert dict(signatures.signature_def) == dict(meta_graph.signature_def)
    images_info = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    assert images_info["images"] == {
        "dtype": "DT_UINT8",
        "tensor_shape": {
            "dim": [{"size": s, "name": ""} for s in ("-1", "16", "16", "3")],
            "unknown_rank": False,
        },
        "name": "serving_default_images:0",
    }
    outputs = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    assert outputs["probabilities"]["dtype"] == "DT_FLOAT"


def predictions(server, path, x):
    code, body = call(f"{server.url}{path}", {"instances": x.tolist()})
    assert code == 200, body
    return np.asarray([row["logits"] for row in body["predictions"]])


def test_labels_versions_and_policies_serve_what_is_configured(served):
    server, base = served
    x = images(2, seed=1)
    by_version = {
        v: tf.saved_model.load(os.path.join(base, str(v)))
        .signatures["serving_default"](images=tf.constant(x))["logits"]
        .numpy()
        for v in (1, 2, 3)
    }
    cases = [
        ("/v1/models/two/labels/stable:predict", 2),
        ("/v1/models/two/labels/canary:predict", 3),
        ("/v1/models/two:predict", 3),
        ("/v1/models/all/versions/1:predict", 1),
        ("/v1/models/one:predict", 1),
        ("/V1/Models/tiny:predict", 3),
        ("/v1/models/t%69ny:predict", 3),
    ]
    for path, version in cases:
        np.testing.assert_allclose(predictions(server, path, x), by_version[version], rtol=1e-6)
    code, body = call(f"{server.url}/v1/models/two/labels/stable")
    assert code == 200 and [s["version"] for s in body["model_version_status"]] == ["2"]
    code, body = call(f"{server.url}/v1/models/two/labels/canary/metadata")
    assert code == 200 and body["model_spec"]["version"] == "3"


URLS = [
    ("GET", "/v1/models/tiny:predict", 400, r"^Malformed request: GET /v1/models/tiny:predict$"),
    ("GET", "/v1/models/tiny/versions/x", 400, "Malformed request"),
    ("POST", "/v1/models/tiny/metadata", 400, "Malformed request: POST"),
    ("POST", "/v1/models/tiny:PREDICT", 400, "Malformed request"),
    ("GET", "/v1/models", 400, r"^Missing model name in request\.$"),
    ("GET", "/v1/models/nope", 404, r"^Could not find any versions of model nope$"),
    ("GET", "/v1/models/nope/metadata", 404, r"^Servable not found for request: Latest\(nope\)$"),
    ("POST", "/v1/models/nope:predict", 404, r"^Servable not found for request: Latest\(nope\)$"),
    ("POST", "/v1/models/nope/versions/2:predict", 404, r"Specific\(nope, 2\)$"),
    ("GET", "/v1/models/tiny/versions/1", 404, r"^Could not find version 1 of model tiny$"),
    ("POST", "/v1/models/tiny/versions/1:predict", 404, r"Specific\(tiny, 1\)$"),
    ("GET", "/v1/models/two/labels/nope", 400, r"^Unrecognized servable version label: nope$"),
    ("GET", "/v1/models/tiny/versions/" + "9" * 5000, 400, "Failed to convert version"),
    (
        "POST",
        "/v1/models/tiny:classify",
        400,
        r"^Expected classification signature method_name to be tensorflow/serving/classify\. Was: tensorflow/serving/predict$",
    ),
    (
        "POST",
        "/v1/models/tiny:regress",
        400,
        r"^Expected regression signature method_name to be tensorflow/serving/regress\. Was: tensorflow/serving/predict$",
    ),
    ("GET", "/v2/models/tiny", 404, "Not found"),
    ("PUT", "/v1/models/tiny", 405, "Malformed request: PUT"),
    ("DELETE", "/v1/models/tiny", 405, "Malformed request: DELETE"),
]


@pytest.mark.parametrize(
    "method, path, status, match", URLS, ids=[f"{u[0]} {u[1][:40]}" for u in URLS]
)
def test_url_grammar_and_status_codes(served, method, path, status, match):
    server, _ = served
    body = {"examples": [{"x": 1}]} if method == "POST" else None
    code, reply = call(f"{server.url}{path}", body, method=method)
    assert code == status and re.search(match, reply["error"]), reply


CONFIGS = [
    'model_config_list { config { name: "a" base_path: "/a" } }',
    'model_config_list { confg { name: "a" base_path: "/a" } }',  # typo
    'model_config_list { config { name: "a" base_path: "/a" }',  # unterminated
    'model_config_list { config { name: "a" base_path: 3 } }',
    'model_config_list { config { name: "\\303\\251" base_path: "/a" } }',
    'model_config_list { config [ { name: "a" base_path: "/a" }, { name: "b" base_path: "/b" } ] }',
    'model_config_list { config { name: "a", base_path: "/a"; } }',
    'model_config_list < config < name: "a" base_path: "/a" > >',
    'model_config_list { config { name: "a" "b" base_path: \'/a\' } }',
    '# comment\nmodel_config_list: { config: { name: "a" base_path: "/a" model_platform: "tensorflow" } }',
    'model_config_list { config { name: "a" base_path: "/a" model_version_policy { latest { num_versions: 3 } } } }',
    'model_config_list { config { name: "a" base_path: "/a" model_version_policy { specific { versions: 4 versions: 2 } } version_labels { key: "s" value: 4 } } }',
    'model_config_list { config { name: "a" base_path: "/a" version_labels { key: "s" value: "x" } } }',
    'model_config_list { config { name: "a" base_path: "/a" model_version_policy { newest {} } } }',
]


@pytest.mark.parametrize("text", CONFIGS, ids=[f"config{i}" for i in range(len(CONFIGS))])
def test_model_config_agrees_with_text_format(text):
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError:
        with pytest.raises(ValueError, match="model config"):
            parse_model_config(text)
        return
    (model,) = parse_model_config(text)[:1]
    expected = proto.model_config_list.config[0]
    assert (model.name, model.base_path) == (expected.name, expected.base_path)
    policy = expected.model_version_policy
    assert model.policy == (policy.WhichOneof("policy_choice") or "latest")
    assert model.versions == tuple(sorted(policy.specific.versions))
    assert model.num_versions == max(1, policy.latest.num_versions)
    assert model.labels == dict(expected.version_labels)


def test_model_config_refuses_what_tf_serving_refuses():
    for text, match in [
        ("model_config_list { config { name: 'x' } }", "no base_path"),
        ("model_config_list { }", "holds no config"),
        ("", "expected a model_config_list"),
        (
            "model_config_list { config { name: 'x' base_path: '/a' model_platform: 'onnx' } }",
            "onnx",
        ),
        (
            "model_config_list { config { name: 'x' base_path: '/a' } config { name: 'x' base_path: '/b' } }",
            "unique",
        ),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_model_config(text)


def test_model_config_policy_picks_versions():
    (latest, everything, specific) = parse_model_config(
        "model_config_list {"
        " config { name: 'a' base_path: '/a' model_version_policy { latest { num_versions: 2 } } }"
        " config { name: 'b' base_path: '/a' model_version_policy { all {} } }"
        " config { name: 'c' base_path: '/a' model_version_policy { specific { versions: [2, 9] } } } }"
    )
    assert latest.aspired({1, 5, 3}) == {3, 5}
    assert everything.aspired({1, 5, 3}) == {1, 3, 5}
    assert specific.aspired({1, 2, 3}) == {2}


def test_raw_socket_sees_json_errors_for_any_method(served):
    server, _ = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"OPTIONS /v1/models/tiny HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = s.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 405 ") and "Allow: GET, POST" in reply
    assert reply.rstrip().endswith("}") and '"error"' in reply
