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
import shutil
import stat
import uuid

from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import fingerprint_pb2

from tfposenc.export import versions

try:  # TensorFlow's private API: checked only where this TensorFlow has it
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
except ImportError:
    fingerprinting = None

LINEAGE_FILE = os.path.join("assets.extra", "tfposenc_lineage.json")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_EXPORT_BYTES = 2 << 30  # what a push copies at most (this project's exports: MBs)
SPARSE_MIN_BYTES = 1 << 20  # files from this size must occupy their blocks
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


def export_problems(export_dir, max_bytes=MAX_EXPORT_BYTES):
    """Why the export at `export_dir` must not be copied into a serving base (empty list:
    it may): a symbolic link or special file anywhere in it (a link to /dev/zero wrote
    9.65 GB), more than `max_bytes` in all, a sparse file (blocks far fewer than its
    size: a hole that would be written out in full), a missing warm-up file where the
    export has `assets.extra/` (every tfposenc export writes it there), and a
    `fingerprint.pb` that is not the SavedModel's own."""
    problems, total = [], 0
    for root, dirs, files in os.walk(export_dir):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, export_dir)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                problems.append(
                    f"{relative} is a symbolic link (to {os.readlink(path)!r}): pushes copy "
                    "regular files only"
                )
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
                if info.st_size >= SPARSE_MIN_BYTES and info.st_blocks * 512 < info.st_size // 2:
                    problems.append(
                        f"{relative} is a sparse file ({info.st_size} bytes in "
                        f"{info.st_blocks * 512} of disk): a damaged or crafted export"
                    )
            elif not stat.S_ISDIR(info.st_mode):
                problems.append(f"{relative} is not a regular file or directory")
    if total > max_bytes:
        problems.append(f"the export holds {total} bytes, above the push limit of {max_bytes}")
    extra = os.path.join(export_dir, "assets.extra")
    if os.path.isdir(extra) and not os.path.isfile(os.path.join(export_dir, WARMUP_FILE)):
        problems.append(
            f"{WARMUP_FILE} is missing although the export has assets.extra/ (where every "
            "export writes it): a damaged copy"
        )
    fingerprint = _fingerprint_problem(export_dir)
    if fingerprint:
        problems.append(fingerprint)
    return problems


def _fingerprint_problem(export_dir):
    path = os.path.join(export_dir, "fingerprint.pb")
    if not os.path.isfile(path) or os.path.islink(path):
        return None
    try:
        with open(path, "rb") as f:
            stored = fingerprint_pb2.FingerprintDef.FromString(f.read())
    except DecodeError:
        return "fingerprint.pb is not a FingerprintDef (corrupt)"
    if fingerprinting is None:
        return None
    try:
        actual = fingerprint_pb2.FingerprintDef.FromString(
            fingerprinting.CreateFingerprintDef(export_dir)
        )
    except Exception:  # noqa: BLE001 - saved_model.pb unreadable: infra validation says why
        return None
    if stored.saved_model_checksum != actual.saved_model_checksum:
        return (
            f"fingerprint.pb does not match saved_model.pb (checksum "
            f"{stored.saved_model_checksum}, the file's is {actual.saved_model_checksum})"
        )
    return None


def copy_export(export_dir, target, max_bytes=MAX_EXPORT_BYTES):
    """Copies `export_dir` to `target`, symbolic links as links (never followed),
    stopping with `ValueError` once more than `max_bytes` were copied."""
    copied = 0

    def copy(source, destination):
        nonlocal copied
        copied += os.lstat(source).st_size
        if copied > max_bytes:
            raise ValueError(
                f"the export grew past the push limit of {max_bytes} bytes while copied"
            )
        return shutil.copy2(source, destination, follow_symlinks=False)

    shutil.copytree(export_dir, target, symlinks=True, copy_function=copy)


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
    "copy_export",
    "export_problems",
    "infer_run",
    "retire",
    "sha256",
    "versions",
]
