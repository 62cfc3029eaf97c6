"""The serving base of a push: versions, staging names, the lock, lineage and retiring.

The integer version directories TF Serving serves (`versions`), the hidden names a push
uses beside them (`.push-*` staging copies, `.push.lock`, `.retired/`), the `flock` that
serialises pushes (`Lock`), the hashes a lineage record holds (`sha256`,
`config_hash`), the run an export sits in (`infer_run`) and `retire`, which moves old
versions aside and never deletes. Version directories follow `tfposenc.export`'s rule.
"""

import fcntl
import hashlib
import json
import os
import uuid

from tfposenc.export import versions

LINEAGE_FILE = os.path.join("assets.extra", "tfposenc_lineage.json")
STAGING_PREFIX = ".push-"
LOCK_FILE = ".push.lock"
RETIRED = ".retired"


class Lock:
    """An exclusive `flock` on `<serving_base>/.push.lock`; the kernel drops it when the
    holder dies, so a killed push never blocks the next one."""

    def __init__(self, serving_base):
        self.path = os.path.join(serving_base, LOCK_FILE)

    def __enter__(self):
        self.file = open(self.path, "a")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(run_dir):
    path = run_dir and os.path.join(run_dir, "config.json")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        canonical = json.dumps(json.load(f), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def retire(serving_base, keep):
    """Moves every version beyond the newest `keep` into `<serving_base>/.retired/`;
    returns the moved versions."""
    old = versions(serving_base)[:-keep]
    if old:
        os.makedirs(os.path.join(serving_base, RETIRED), exist_ok=True)
    for version in old:
        target = os.path.join(serving_base, RETIRED, str(version))
        if os.path.exists(target):
            target += f"-{uuid.uuid4().hex[:8]}"
        os.rename(os.path.join(serving_base, str(version)), target)
    return old


def infer_run(export_dir):
    """`<run>` of an export at `<run>/exports/<combination>/<version>`, else None."""
    combination_dir = os.path.dirname(os.path.abspath(export_dir))
    exports = os.path.dirname(combination_dir)
    run = os.path.dirname(exports)
    if os.path.basename(exports) == "exports" and os.path.isfile(os.path.join(run, "config.json")):
        return run
    return None


__all__ = [
    "LINEAGE_FILE",
    "LOCK_FILE",
    "RETIRED",
    "STAGING_PREFIX",
    "Lock",
    "config_hash",
    "infer_run",
    "retire",
    "sha256",
    "versions",
]
