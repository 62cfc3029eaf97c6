"""A client for TF Serving's REST and gRPC APIs (the real server or `serving.server`).

    python -m serving.client --url http://127.0.0.1:8501 --model_name gapnet digit.png ...
    python -m serving.client --grpc 127.0.0.1:8500 --model_name gapnet digit.png ...

prints the top classes of each image (indices of the model's `probabilities` output);
images must have the model's input size (`--resize` scales them, with a warning). `predict()` (REST) and `grpc_predict()` (gRPC,
with the stubs of `tensorflow-serving-api`) are the library calls; server errors come
back as `ServingError` with the HTTP status (or gRPC code name) and the server's message.
"""

import json
import sys
import urllib.error
import urllib.request

import numpy as np

from serving.one_line_parser import OneLineParser


class ServingError(Exception):
    """The server answered an error: `status` (HTTP code or gRPC code name) and `message`."""

    def __init__(self, status, message, url):
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


def _model_url(url, model_name, version=None):
    base = f"{url.rstrip('/')}/v1/models/{model_name}"
    return base if version is None else f"{base}/versions/{int(version)}"


def _request(url, payload=None, timeout=60):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            message = json.loads(body).get("error", body.decode(errors="replace"))
        except (json.JSONDecodeError, AttributeError):
            message = body.decode(errors="replace")
        raise ServingError(error.code, message, url) from None
    except urllib.error.URLError as error:
        raise ConnectionError(f"cannot reach {url}: {error.reason}") from None


def status(url, model_name, version=None):
    return _request(_model_url(url, model_name, version))


def metadata(url, model_name, version=None):
    return _request(_model_url(url, model_name, version) + "/metadata")


def predict(url, model_name, images, version=None, signature_name=None, columnar=False, timeout=60):
    """Sends `images` (uint8 array `[batch, H, W, 3]` or a list of them) to `:predict`.

    Returns the server's `predictions` (row format) or `outputs` (columnar): for a
    tfposenc export, dicts with `probabilities`, `logits` and `classes`.
    """
    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    payload = {"inputs" if columnar else "instances": batch.tolist()}
    if signature_name:
        payload["signature_name"] = signature_name
    reply = _request(_model_url(url, model_name, version) + ":predict", payload, timeout)
    return reply["outputs"] if columnar else reply["predictions"]


def _grpc_call(target, method, request, timeout):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return getattr(stub, method)(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                raise ConnectionError(f"cannot reach {target}: {error.details()}") from None
            raise ServingError(error.code().name, error.details(), target) from None


def _model_spec(spec, model_name, version=None, signature_name=None):
    spec.name = model_name
    if version is not None:
        spec.version.value = int(version)
    if signature_name:
        spec.signature_name = signature_name


def grpc_predict(
    target, model_name, images, version=None, signature_name=None, input_name=None, timeout=60
):
    """Sends `images` (uint8 `[batch, H, W, 3]`) to `PredictionService.Predict` at `target`
    ("host:port") as the signature's one input (`input_name`, default: asked from the
    metadata); returns `{output name: numpy array}`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    batch = np.asarray(images, dtype=np.uint8)
    if batch.ndim == 3:
        batch = batch[None]
    request = predict_pb2.PredictRequest()
    _model_spec(request.model_spec, model_name, version, signature_name)
    if input_name is None:
        meta = grpc_metadata(target, model_name, version, timeout)
        name = signature_name or "serving_default"
        (input_name,) = meta["metadata"]["signature_def"]["signature_def"][name]["inputs"]
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(batch))
    response = _grpc_call(target, "Predict", request, timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def grpc_metadata(target, model_name, version=None, timeout=60):
    """`GetModelMetadata` over gRPC, as the same dict the REST API answers."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    from serving.metadata import metadata_json

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    _model_spec(request.model_spec, model_name, version)
    return metadata_json(_grpc_call(target, "GetModelMetadata", request, timeout))


def _read_image(path, size=None, resize=False):
    """The RGB pixels of the image file `path`; one whose size differs from the model's
    input `(height, width)` is refused with `ValueError`, or resized with a warning on
    stderr when `resize` (a resized canvas is no longer what the model was trained on)."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if size and image.size != (size[1], size[0]):
        found = f"{image.size[1]}x{image.size[0]}"
        if not resize:
            raise ValueError(
                f"{path} is {found} pixels, the model takes {size[0]}x{size[1]}: crop or pad "
                "it to that size, or pass --resize to scale it (which changes what the model sees)"
            )
        print(
            f"warning: resizing {path} from {found} to {size[0]}x{size[1]} pixels (--resize)",
            file=sys.stderr,
            flush=True,
        )
        image = image.resize((size[1], size[0]))
    return np.asarray(image, dtype=np.uint8)


def _input_size(meta):
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    dims = next(iter(signature["inputs"].values()))["tensor_shape"]["dim"]
    height, width = int(dims[1]["size"]), int(dims[2]["size"])
    return None if height < 0 or width < 0 else (height, width)


def build_parser():
    parser = OneLineParser(
        prog="python -m serving.client",
        description="Prints the top classes a TF Serving model (REST or gRPC) gives image files.",
        epilog="Classes are the indices of the model's `probabilities` output (0 to classes - 1), "
        "in the order of the labels it was trained with; for a tfposenc location model, class "
        "row * grid_size + col is the grid cell holding the digit (row-major).",
    )
    add = parser.add_argument
    add(
        "--url",
        default="http://127.0.0.1:8501",
        help="base URL of the REST API (default: %(default)s)",
    )
    add("--grpc", default=None, metavar="HOST:PORT", help="use the gRPC API at HOST:PORT instead")
    add("--model_name", required=True, help="name of the served model (required)")
    add("--version", type=int, default=None, help="model version (default: the latest)")
    add("--signature_name", default=None, help="signature (default: serving_default)")
    add(
        "--top",
        type=int,
        default=3,
        help="classes printed per image, most probable first (default: %(default)s)",
    )
    add(
        "--resize",
        action="store_true",
        help="scale images whose size differs from the model's input (default: refuse them)",
    )
    add("images", nargs="+", help="image files (PNG, JPEG, BMP, GIF) of the model's input size")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be >= 1, received {args.top}")
    try:
        if args.grpc:
            meta = grpc_metadata(args.grpc, args.model_name, args.version)
        else:
            meta = metadata(args.url, args.model_name, args.version)
        size = _input_size(meta)
        batch = np.stack([_read_image(p, size, args.resize) for p in args.images])
        if args.grpc:
            outputs = grpc_predict(
                args.grpc, args.model_name, batch, args.version, args.signature_name
            )
            predictions = [{"probabilities": p} for p in outputs["probabilities"]]
        else:
            predictions = predict(
                args.url, args.model_name, batch, args.version, args.signature_name
            )
    except (ServingError, ConnectionError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        "class: probability, top first (classes are indices of the model's `probabilities` "
        "output; see --help)"
    )
    for path, prediction in zip(args.images, predictions):
        probabilities = np.asarray(prediction["probabilities"])
        top = np.argsort(-probabilities)[: args.top]
        ranked = ", ".join(f"class {c}: {100 * probabilities[c]:.1f}%" for c in top)
        print(f"{path}: {ranked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
