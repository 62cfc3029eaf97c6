"""A REST server with TF Serving's API over SavedModel base paths.

    python -m serving.server --model_name gapnet --model_base_path runs/channelwise/exports/k3-zero-gapnet-location

Flags mean what they mean for `tensorflow_model_server`; endpoints and JSON follow TF
Serving's REST API reference (`api_rest.md` in tensorflow/serving):

    GET  /v1/models/{name}[/versions/{v}]              model status
    GET  /v1/models/{name}[/versions/{v}]/metadata     signature defs
    POST /v1/models/{name}[/versions/{v}]:predict      row ("instances") or columnar ("inputs")

Version policy (TF Serving's default, "latest"): the highest integer version under the
base path is served; a new version is picked up within the poll interval, and the old
one is unloaded only after its in-flight requests finish. Extensions: `{"b64": ...}`
values sent to a uint8 image input are decoded as PNG/JPEG/BMP/GIF images, and
`--max_request_bytes` answers 413 to larger bodies. This module imports TensorFlow but
not tfposenc: it serves any SavedModel.
"""

import argparse
import os
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serving.model_config import parse_model_config  # noqa: E402
from serving.repository import ServedModel  # noqa: E402
from serving.rest import ModelServer  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description="REST server with TF Serving's API")
    parser.add_argument("--model_name", default=None, help="name of the single model to serve")
    parser.add_argument(
        "--model_base_path", default=None, help="its base path (integer version subdirectories)"
    )
    parser.add_argument(
        "--model_config_file", default=None, help="TF Serving text model_config_list file"
    )
    parser.add_argument("--rest_api_port", type=int, default=8501)
    parser.add_argument(
        "--rest_api_host", default="127.0.0.1", help="bind address (TF Serving: 0.0.0.0)"
    )
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=2.0)
    parser.add_argument(
        "--max_request_bytes", type=int, default=64 << 20, help="413 above this body size"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="gRPC port of TF Serving: accepted, unused"
    )
    parser.add_argument(
        "--rest_api_num_threads", type=int, default=None, help="accepted; one thread per request"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def models_from_args(args, parser):
    if args.model_config_file:
        if args.model_base_path:
            parser.error("use either --model_config_file or --model_base_path, not both")
        with open(args.model_config_file) as f:
            try:
                configs = parse_model_config(f.read())
            except ValueError as error:
                parser.error(str(error))
    else:
        if not args.model_base_path:
            parser.error("--model_base_path (or --model_config_file) is required")
        configs = [{"name": args.model_name or "default", "base_path": args.model_base_path}]
    for config in configs:
        if not os.path.isdir(config["base_path"]):
            parser.error(
                f"base path of model {config['name']!r} is not a directory: {config['base_path']}"
            )
    return [ServedModel(c["name"], os.path.abspath(c["base_path"])) for c in configs]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.file_system_poll_wait_seconds <= 0:
        parser.error(
            f"--file_system_poll_wait_seconds must be > 0, received {args.file_system_poll_wait_seconds}"
        )
    models = models_from_args(args, parser)
    server = ModelServer(
        (args.rest_api_host, args.rest_api_port),
        models,
        args.file_system_poll_wait_seconds,
        args.max_request_bytes,
        args.verbose,
    )

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"REST API at http://{host}:{port}/v1/models/ ({', '.join(server.models)})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
