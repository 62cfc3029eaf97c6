"""The version repository: versions on disk, loading, unloading, in-flight counting.

A `ServedModel` follows one base path under its version policy, as TF Serving's file
system source and availability-preserving policy do:

- a version is an ASCII-digit directory name holding `saved_model.pb`;
- each poll serves the versions the policy picks from those present (deleting the
  serving version rolls back to the previous one), reloads a version whose directory
  was replaced, and unloads versions no longer picked once a picked one is available
  (or at once when none is left on disk), each after its in-flight requests finish;
- a version that fails to load (or to warm up) is retried `max_num_load_retries` times,
  `load_retry_interval` seconds apart, its error shown in status (LOADING while
  retrying, END after); then it is left aside until its files change, and the `latest`
  policy picks among the other versions, so the version before it keeps serving.
"""

import os
import re
import sys
import threading
import time
import traceback

from serving.errors import invalid_argument, not_found, quote

VERSION_NAME = re.compile(r"[0-9]{1,18}", re.ASCII)  # TF Serving parses an int64


def versions_on_disk(base_path):
    """`{version: identity}` of the servable versions under `base_path`."""
    found = {}
    for name in os.listdir(base_path):
        if not VERSION_NAME.fullmatch(name):
            continue
        path = os.path.join(base_path, name)
        try:
            directory = os.stat(path)
            graph = os.stat(os.path.join(path, "saved_model.pb"))
        except OSError:
            continue
        found[int(name)] = (directory.st_ino, graph.st_ino, graph.st_mtime_ns, graph.st_size)
    return found


def log(message):
    print(message, file=sys.stderr, flush=True)


class _Failure:
    def __init__(self, identity):
        self.identity = identity
        self.attempts = 0
        self.error = ""
        self.next_attempt = 0.0


class ServedModel:
    """A model name over a base path, serving the versions its policy picks.

    Args:
        config: `serving.model_config.ModelConfig`.
        load: callable `(version, path) -> Servable`.
        max_num_load_retries: int. Retries after a failed load. Defaults to 5.
        load_retry_interval: float. Seconds between load attempts. Defaults to 60.
    """

    def __init__(self, config, load, max_num_load_retries=5, load_retry_interval=60.0):
        self.config = config
        self.name = config.name
        self.base_path = config.base_path
        self._load = load
        self.max_num_load_retries = max_num_load_retries
        self.load_retry_interval = load_retry_interval
        self.lock = threading.Lock()
        self.servables = {}  # version -> Servable, each AVAILABLE
        self.identities = {}  # version -> identity of the loaded files
        self.states = {}  # version -> (state, error code, error message)
        self.failures = {}  # version -> _Failure

    # === Polling ===

    def poll(self):
        """Loads, reloads and unloads versions to follow the files under the base path."""
        try:
            on_disk = versions_on_disk(self.base_path)
        except OSError as error:
            log(f"model {self.name}: cannot list {self.base_path}: {error}")
            return
        now = time.monotonic()
        for version in list(self.failures):
            if self.failures[version].identity != on_disk.get(version):
                del self.failures[version]  # changed or gone: a fresh start
        given_up = {v for v, f in self.failures.items() if f.attempts > self.max_num_load_retries}
        aspired = self.config.aspired(set(on_disk) - given_up)
        for version in sorted(aspired, reverse=True):
            if self.identities.get(version) == on_disk[version]:
                continue
            failure = self.failures.get(version)
            if failure is None or now >= failure.next_attempt:
                self._try_load(version, on_disk[version])
        with self.lock:
            serving_aspired = any(v in self.servables for v in aspired)
            retired = [
                v for v in self.servables if v not in aspired and (serving_aspired or not on_disk)
            ]
        for version in retired:
            self._unload(version)

    def _try_load(self, version, identity):
        path = os.path.join(self.base_path, str(version))
        failure = self.failures.setdefault(version, _Failure(identity))
        failure.attempts += 1
        with self.lock:
            if version not in self.servables:
                self.states[version] = ("LOADING", "OK", "")
        start = time.monotonic()
        try:
            servable = self._load(version, path)
        except Exception as error:  # a broken version must not take the server down
            failure.error = f"{type(error).__name__}: {error}".strip()
            failure.next_attempt = time.monotonic() + self.load_retry_interval
            last = failure.attempts > self.max_num_load_retries
            attempt = f"attempt {failure.attempts} of {self.max_num_load_retries + 1}"
            message = f"Loading servable: {{name: {self.name} version: {version}}} failed ({attempt}): {failure.error}"
            log(message + ("" if last else f"; retrying in {self.load_retry_interval:g} s"))
            with self.lock:
                if version not in self.servables:
                    self.states[version] = ("END" if last else "LOADING", "UNKNOWN", message)
            return
        del self.failures[version]
        with self.lock:
            old = self.servables.get(version)
            self.servables[version] = servable
            self.identities[version] = identity
            self.states[version] = ("AVAILABLE", "OK", "")
        warm = f", {servable.warmup_records} warm-up requests" if servable.warmup_records else ""
        log(
            f"serving {self.name} version {version} ({time.monotonic() - start:.2f} s to load{warm})"
        )
        if old is not None:  # the directory was replaced: retire the old files' model
            threading.Thread(target=self._drain, args=(old,), daemon=True).start()

    def _unload(self, version):
        with self.lock:
            servable = self.servables.pop(version)
            self.identities.pop(version, None)
            self.states[version] = ("UNLOADING", "OK", "")
        log(f"unloading {self.name} version {version}")
        threading.Thread(target=self._drain, args=(servable, version), daemon=True).start()

    def _drain(self, servable, version=None):
        with servable.idle:
            servable.idle.wait_for(lambda: servable.inflight == 0)
        if version is not None:
            with self.lock:
                if version not in self.servables:
                    self.states[version] = ("END", "OK", "")

    # === Requests ===

    def resolve(self, version=None, label=None):
        """The version a request names (by number or label); `None` for the latest."""
        if label is None:
            return version
        if label not in self.config.labels:
            raise invalid_argument(f"Unrecognized servable version label: {quote(label)}")
        return self.config.labels[label]

    def acquire(self, version=None):
        """The servable of `version` (default: the highest available), counted in flight."""
        with self.lock:
            if version is None:
                chosen = self.servables[max(self.servables)] if self.servables else None
                spec = f"Latest({self.name})"
            else:
                chosen = self.servables.get(version)
                spec = f"Specific({self.name}, {version})"
            if chosen is None:
                raise not_found(f"Servable not found for request: {spec}")
            with chosen.idle:
                chosen.inflight += 1
            return chosen

    def release(self, servable):
        with servable.idle:
            servable.inflight -= 1
            servable.idle.notify_all()

    def status(self, version=None):
        """`[(version, state, error code, message), ...]`, highest version first."""
        with self.lock:
            states = dict(self.states)
        if not states:
            raise not_found(f"Could not find any versions of model {self.name}")
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {self.name}")
            states = {version: states[version]}
        return [(v, *states[v]) for v in sorted(states, reverse=True)]


class Poller:
    """Polls every model every `interval` seconds on a daemon thread; survives any error."""

    def __init__(self, models, interval):
        self.models = models
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="poller", daemon=True)

    def poll_all(self):
        for model in self.models:
            try:
                model.poll()
            except Exception:  # noqa: BLE001 - a bad poll must not end polling
                log(f"model {model.name}: poll failed:\n{traceback.format_exc()}")

    def start(self):
        self._thread.start()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.poll_all()

    def stop(self):
        self._stop.set()
