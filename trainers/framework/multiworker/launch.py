"""Starts a multi-worker training on this machine: N worker processes over loopback.

    python -m trainers.launch --workers 2 -- trainers.channelwise --preset smoke
    tfposenc-launch --workers 2 -- trainers.channelwise --preset smoke   # console script

Each worker runs `python -m <trainer module> [trainer flags] --strategy multi_worker`
(the strategy flag is added unless given) with a `TF_CONFIG` naming every worker at a
free `127.0.0.1` port and its own index (worker 0 is the chief). Their output is
forwarded line by line with a `[worker i]` prefix. When one worker fails, the others
are stopped (SIGTERM, then SIGKILL after `--grace` seconds) and the launcher exits with
the failing worker's code (128 + signal for a worker killed by a signal); when all
succeed it exits 0. Running the same command again resumes the run from the chief's
last complete backup. On a real cluster each host sets its own `TF_CONFIG` and runs the
trainer itself (see `examples/`).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from trainers.framework.cli import Parser


def free_ports(count, host="127.0.0.1"):
    """`count` distinct ports free on `host` now (the sockets are closed on return)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(count, host="127.0.0.1"):
    """The `TF_CONFIG` (a JSON string) of each of `count` workers on `host`."""
    cluster = {"worker": [f"{host}:{port}" for port in free_ports(count, host)]}
    return [
        json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        for index in range(count)
    ]


def worker_command(module, flags):
    """The command each worker runs: the trainer module with `--strategy multi_worker`."""
    flags = list(flags)
    for i, flag in enumerate(flags):
        value = None
        if flag == "--strategy" and i + 1 < len(flags):
            value = flags[i + 1]
        elif flag.startswith("--strategy="):
            value = flag.split("=", 1)[1]
        if value is not None and value != "multi_worker":
            raise ValueError(
                "`--strategy` must be multi_worker (or omitted) under the launcher. "
                f"Received: --strategy {value}"
            )
        if value is not None:
            return [sys.executable, "-m", module, *flags]
    return [sys.executable, "-m", module, *flags, "--strategy", "multi_worker"]


def _forward(process, prefix, lock):
    for line in iter(process.stdout.readline, b""):
        text = line.decode(errors="replace").rstrip("\r\n")
        for part in text.split("\r"):  # progress bars redraw with carriage returns
            if part.strip():
                with lock:
                    sys.stdout.write(f"{prefix} {part}\n")
                    sys.stdout.flush()
    process.stdout.close()


def exit_code(returncode):
    """A shell-style exit code: 128 + N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _stop(processes, grace):
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def launch(workers, module, flags, host="127.0.0.1", grace=10.0, env=None):
    """Runs `workers` processes of `module`; returns the launcher's exit code."""
    command = worker_command(module, flags)
    lock = threading.Lock()
    processes, threads = [], []
    base = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    # Quiet C++ start-up logs; the trainer's CLI then also skips its TensorFlow warm-up
    # op (an op before MultiWorkerMirroredStrategy is made breaks its collectives).
    base.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        for index, tf_config in enumerate(tf_configs(workers, host)):
            process = subprocess.Popen(
                command,
                env={**base, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
            processes.append(process)
            thread = threading.Thread(
                target=_forward, args=(process, f"[worker {index}]", lock), daemon=True
            )
            thread.start()
            threads.append(thread)
        print(
            f"launch: {workers} worker(s) of {module} on {host}, pids "
            f"{' '.join(str(p.pid) for p in processes)}",
            flush=True,
        )
        code = 0
        while True:
            running = [p for p in processes if p.poll() is None]
            failed = [(i, p) for i, p in enumerate(processes) if p.poll() not in (None, 0)]
            if failed:
                index, process = failed[0]
                code = exit_code(process.returncode)
                with lock:
                    print(
                        f"launch: worker {index} exited with code {code}; stopping the others",
                        flush=True,
                    )
                break
            if not running:
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        code = 130
    finally:
        _stop(processes, grace)
        for thread in threads:
            thread.join(timeout=5)
    return code


def main(argv=None):
    """`python -m trainers.launch` and the `tfposenc-launch` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = Parser(
        prog="python -m trainers.launch",
        description=__doc__.splitlines()[0],
        usage="%(prog)s [--workers N] [--host HOST] [--grace S] -- MODULE [TRAINER FLAGS]",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL (default: 10)",
    )
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])  # -h / --help answered here
    if split == len(argv):
        parser.error("give the trainer after `--`, e.g. -- trainers.channelwise --preset smoke")
    rest = argv[split + 1 :]
    if not rest:
        parser.error("give the trainer module after `--`, e.g. -- trainers.channelwise")
    if args.workers < 1:
        parser.error(f"argument --workers: must be at least 1. Received: {args.workers}")
    try:
        command = worker_command(rest[0], rest[1:])
    except ValueError as error:
        parser.error(str(error))
    del command
    return launch(args.workers, rest[0], rest[1:], args.host, args.grace)


if __name__ == "__main__":
    raise SystemExit(main())
