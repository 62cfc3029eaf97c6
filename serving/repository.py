"""The version repository: versions on disk, loading, unloading, in-flight counting.

A `ServedModel` follows one base path (TF Serving's "latest" policy); `poll()` loads a
newer version and unloads older ones once their in-flight requests have finished.
"""

import os
import sys
import threading
from http import HTTPStatus

import tensorflow as tf

from serving.errors import RequestError

DEFAULT_SIGNATURE = "serving_default"


class LoadedVersion:
    """One loaded SavedModel version, with a count of the requests using it."""

    def __init__(self, version, path):
        self.version = version
        self.path = path
        self.module = tf.saved_model.load(path)
        self.signatures = dict(self.module.signatures)
        self.state = "AVAILABLE"
        self.inflight = 0
        self.idle = threading.Condition()

    def signature(self, name):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f'Serving signature name: "{name}" not found in signature def',
            )
        return name, self.signatures[name]


def _versions_on_disk(base_path):
    try:
        names = os.listdir(base_path)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(base_path, name)
        if name.isdigit() and os.path.exists(os.path.join(path, "saved_model.pb")):
            found.append(int(name))
    return sorted(found)


class ServedModel:
    """A model name over a base path, serving its latest version."""

    def __init__(self, name, base_path):
        self.name = name
        self.base_path = base_path
        self.lock = threading.Lock()
        self.loaded = {}  # version -> LoadedVersion
        self.ended = {}  # version -> final state, for status
        self.errors = {}

    def poll(self):
        """Loads a newer version if one appeared; unloads older ones once idle."""
        versions = _versions_on_disk(self.base_path)
        if not versions:
            return
        latest = versions[-1]
        with self.lock:
            current = max(self.loaded) if self.loaded else None
        if current is not None and latest <= current:
            return
        try:
            fresh = LoadedVersion(latest, os.path.join(self.base_path, str(latest)))
        except Exception as error:  # a broken version must not take the server down
            self.errors[latest] = str(error)
            print(
                f"failed to load {self.name} version {latest}: {error}", file=sys.stderr, flush=True
            )
            return
        with self.lock:
            old = [v for v in self.loaded.values()]
            self.loaded[latest] = fresh
            for version in old:
                version.state = "UNLOADING"
        print(f"serving {self.name} version {latest}", flush=True)
        for version in old:
            threading.Thread(target=self._unload, args=(version,), daemon=True).start()

    def _unload(self, version):
        with version.idle:
            version.idle.wait_for(lambda: version.inflight == 0)
        with self.lock:
            self.loaded.pop(version.version, None)
            version.state = "END"
            self.ended[version.version] = "END"

    def acquire(self, version=None):
        with self.lock:
            if version is None:
                available = [v for v in self.loaded.values() if v.state == "AVAILABLE"]
                chosen = max(available, key=lambda v: v.version) if available else None
                spec = f"Latest({self.name})"
            else:
                chosen = self.loaded.get(version)
                spec = f"Specific({self.name}, {version})"
            if chosen is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"Servable not found for request: {spec}")
            with chosen.idle:
                chosen.inflight += 1
            return chosen

    def release(self, loaded):
        with loaded.idle:
            loaded.inflight -= 1
            loaded.idle.notify_all()

    def status(self, version=None):
        with self.lock:
            states = {v: lv.state for v, lv in self.loaded.items()}
            states.update({v: s for v, s in self.ended.items() if v not in states})
        if version is not None:
            if version not in states:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"Could not find version {version} of model {self.name}",
                )
            states = {version: states[version]}
        if not states:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"Could not find any versions of model {self.name}"
            )
        return {
            "model_version_status": [
                {"version": str(v), "state": s, "status": {"error_code": "OK", "error_message": ""}}
                for v, s in sorted(states.items(), reverse=True)
            ]
        }
