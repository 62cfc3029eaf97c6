"""A model server with TF Serving's REST and gRPC APIs over SavedModel base paths.

    tfposenc-model-server --model_name gapnet --model_base_path runs/channelwise/exports/k3-zero-gapnet-location
    python -m serving.server --model_config_file models.config --enable_batching

Flags mean what they mean for `tensorflow_model_server`. REST on `--rest_api_port`
(`serving.rest`), gRPC on `--port` (`serving.grpc_api`), both over one version
repository (`serving.repository`): each model serves the versions its policy picks from
its base path (default: the latest), follows the directory as versions are added,
replaced or deleted, retries failed loads a bounded number of times with the error in
status, and replays a version's warm-up requests before serving it. `--enable_batching`
merges concurrent requests (`serving.batching`). This package imports TensorFlow but
not tfposenc: it serves any SavedModel.
"""

import argparse
import os
import signal
import sys
import threading

from serving.one_line_parser import OneLineParser

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: quiet start-up


def build_parser():
    parser = OneLineParser(
        prog="python -m serving.server",
        description="Model server with TF Serving's REST and gRPC APIs",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--model_name", default="default", help="name of the single model to serve")
    add("--model_base_path", default=None, help="its base path (integer version subdirectories)")
    add("--model_config_file", default=None, help="TF Serving text ModelServerConfig file")
    add("--port", type=int, default=8500, help="gRPC port; 0 turns the gRPC API off")
    add("--rest_api_port", type=int, default=8501, help="REST port; 0 turns the REST API off")
    add(
        "--rest_api_host",
        default="127.0.0.1",
        help="bind address of both APIs (TF Serving: 0.0.0.0)",
    )
    add("--rest_api_num_threads", type=int, default=None, help="REST workers (default: 4 per CPU)")
    add("--rest_api_timeout_in_ms", type=int, default=30000, help="time to send a request, or idle")
    add("--grpc_max_threads", type=int, default=None, help="gRPC workers (default: 4 per CPU)")
    add(
        "--max_request_bytes",
        type=int,
        default=64 << 20,
        help="413 (REST) / RESOURCE_EXHAUSTED (gRPC) above this body size",
    )
    add(
        "--max_in_flight_bytes",
        type=int,
        default=1 << 30,
        help="memory all requests in flight may hold together: a REST body takes its "
        "Content-Length when its head arrives (503 with Retry-After at once when it does "
        "not fit), decoding takes 4x the body and 16 bytes per image pixel (429 / "
        "RESOURCE_EXHAUSTED)",
    )
    add(
        "--rest_api_max_connections",
        type=int,
        default=None,
        help="open REST connections (unset: the open-file limit less 64); a new one beyond "
        "it gets 503 and is closed at once",
    )
    add("--file_system_poll_wait_seconds", type=float, default=1.0)
    add("--max_num_load_retries", type=int, default=5, help="retries after a failed load")
    add("--load_retry_interval_micros", type=int, default=60_000_000)
    add(
        "--enable_model_warmup",
        type=_bool,
        default=True,
        help="replay assets.extra warm-up requests",
    )
    add(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads of one op (0: TensorFlow's choice, one per core)",
    )
    add(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="ops run at once (0: TensorFlow's choice)",
    )
    add("--enable_batching", action="store_true", help="merge concurrent requests")
    add("--batching_parameters_file", default=None, help="TF Serving BatchingParameters text proto")
    add("--max_images_per_request", type=int, default=1024, help="encoded (b64) images per request")
    add("--max_image_pixels", type=int, default=4096 * 4096, help="pixels of one encoded image")
    add(
        "--max_request_image_pixels",
        type=int,
        default=4096 * 4096,
        help="pixels of all encoded images of one request (16 bytes each are reserved in "
        "flight: 3 decoded, 12 as float32; the model's activations come on top): 400 above",
    )
    add(
        "--max_image_decode_pixels",
        type=int,
        default=64 * 4096 * 4096,
        help="pixels x scans of one progressive JPEG (the decoder passes over the image "
        "once per scan): 400 above, before decoding",
    )
    add("--verbose", action="store_true", help="log every request")
    return parser


def _bool(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, received {text!r}")


def _check_args(args, parser):
    positive = [
        "rest_api_timeout_in_ms",
        "max_request_bytes",
        "load_retry_interval_micros",
        "max_images_per_request",
        "max_image_pixels",
        "max_request_image_pixels",
        "max_image_decode_pixels",
        "max_in_flight_bytes",
    ]
    for name in positive + ["rest_api_num_threads", "grpc_max_threads", "rest_api_max_connections"]:
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be > 0, received {value}")
    if args.file_system_poll_wait_seconds <= 0:
        parser.error(
            f"--file_system_poll_wait_seconds must be > 0, received {args.file_system_poll_wait_seconds}"
        )
    for name in ("tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, received {getattr(args, name)}")
    if args.max_num_load_retries < 0:
        parser.error(f"--max_num_load_retries must be >= 0, received {args.max_num_load_retries}")
    if args.batching_parameters_file and not args.enable_batching:
        parser.error("--batching_parameters_file needs --enable_batching")
    if not args.port and not args.rest_api_port:
        parser.error("--port and --rest_api_port are both 0: no API to serve")


def model_configs(args, parser):
    from serving.model_config import ModelConfig, read_model_config

    if args.model_config_file:
        if args.model_base_path:
            parser.error("use either --model_config_file or --model_base_path, not both")
        try:
            configs = read_model_config(args.model_config_file)
        except (OSError, ValueError) as error:
            parser.error(str(error))
    else:
        if not args.model_base_path:
            parser.error("--model_base_path (or --model_config_file) is required")
        configs = [ModelConfig(args.model_name, os.path.abspath(args.model_base_path))]
    for config in configs:
        if not os.path.isdir(config.base_path):
            parser.error(
                f"base path of model {config.name!r} is not a directory: {config.base_path}"
            )
    return configs


def warn_if_no_versions(model):
    """Warns on stderr about a base path that holds no version directory."""
    from serving.repository import versions_on_disk

    try:
        if versions_on_disk(model.base_path):
            return
    except OSError:
        return
    path = model.base_path.rstrip(os.sep)
    hint = "; it waits for one to appear"
    if os.path.basename(path).isdigit() or os.path.exists(os.path.join(path, "saved_model.pb")):
        hint = (
            f"; it looks like a version directory itself: serve its parent "
            f"(--model_base_path {os.path.dirname(path)})"
        )
    print(
        f"warning: model {model.name!r}: base path {path} holds no version directory "
        f"(integer names holding saved_model.pb){hint}",
        file=sys.stderr,
        flush=True,
    )


def check_labels(model, parser, flag):
    """Refuses labels that point at versions not served once the models loaded, as TF
    Serving refuses to assign a label to a version not available for inference."""
    served = sorted(model.servables)
    for label, version in sorted(model.config.labels.items()):
        if version not in served:
            parser.error(
                f"{flag}: version label {label!r} of model {model.name!r} points at version "
                f"{version}, which is not served (served: {served or 'none'})"
            )


def batcher_from_args(args, parser):
    if not args.enable_batching:
        return None
    from serving.batching import Batcher, BatchingOptions

    try:
        if args.batching_parameters_file:
            with open(args.batching_parameters_file, encoding="utf-8") as f:
                options = BatchingOptions.from_text(f.read())
        else:
            options = BatchingOptions()
    except (OSError, ValueError) as error:
        parser.error(str(error))
    return Batcher(options)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(args, parser)
    configs = model_configs(args, parser)
    from serving import malloc

    tuned = malloc.tune()

    import tensorflow as tf

    # Before anything runs an op: TensorFlow fixes its thread pools on first use.
    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)

    from serving.budget import Budget
    from serving.http_server import default_num_threads
    from serving.images import ImageBudget
    from serving.repository import Poller, ServedModel
    from serving.servable import Servable

    batcher = batcher_from_args(args, parser)

    def load(version, path):
        return Servable(version, path, batcher, warmup=args.enable_model_warmup)

    models = {
        c.name: ServedModel(
            c, load, args.max_num_load_retries, args.load_retry_interval_micros / 1e6
        )
        for c in configs
    }
    poller = Poller(list(models.values()), args.file_system_poll_wait_seconds)
    poller.poll_all()
    for model in models.values():
        warn_if_no_versions(model)
        check_labels(model, parser, "--model_config_file")
    poller.start()
    threads = args.rest_api_num_threads or default_num_threads()
    budget = Budget(args.max_in_flight_bytes)
    host = args.rest_api_host
    grpc_server = rest = None
    if args.port:
        from serving.grpc_api import grpc_server as make_grpc_server

        grpc_threads = args.grpc_max_threads or default_num_threads()
        grpc_server, grpc_port = make_grpc_server(
            f"{host}:{args.port}", models, grpc_threads, args.max_request_bytes, budget
        )
        grpc_server.start()
        print(f"gRPC API at {host}:{grpc_port}", flush=True)
    if args.rest_api_port:
        from serving.rest import rest_server

        limits = ImageBudget(
            args.max_images_per_request,
            args.max_image_pixels,
            args.max_request_image_pixels,
            args.max_image_decode_pixels,
        )
        rest = rest_server(
            (host, args.rest_api_port),
            models,
            threads,
            args.rest_api_timeout_in_ms / 1000,
            args.max_request_bytes,
            limits,
            budget,
            args.rest_api_max_connections,
        )
        rest_host, rest_port = rest.server_address[:2]
        print(
            f"REST API at http://{rest_host}:{rest_port}/v1/models/ ({', '.join(models)})",
            flush=True,
        )
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    print(
        f"TensorFlow threads per op: {intra or 'default'}, ops at once: {inter or 'default'}",
        flush=True,
    )
    if tuned:
        print(
            f"glibc malloc: mmap threshold {malloc.MMAP_THRESHOLD >> 20} MiB, trim threshold "
            f"{malloc.TRIM_THRESHOLD >> 20} MiB (large request buffers reused, not re-faulted)",
            flush=True,
        )
    stopped = threading.Event()

    def stop(signum, frame):
        stopped.set()
        if rest is not None:
            threading.Thread(target=rest.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if rest is not None:
            rest.serve_forever()
        else:
            while not stopped.wait(0.5):
                pass
    finally:
        poller.stop()
        if rest is not None:
            rest.server_close()
        if grpc_server is not None:
            grpc_server.stop(grace=2).wait(5)
        if batcher is not None:
            batcher.stop()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
