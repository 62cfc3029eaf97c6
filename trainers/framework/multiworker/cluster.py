"""`TF_CONFIG` for multi-worker training: parsing, validation and this task's place.

`task_from_environment` reads `TF_CONFIG`, checks it (valid JSON, `chief`/`worker` jobs
of distinct `host:port` addresses, one chief, a task type and index the cluster has) and
returns a `Task`: the cluster, this task's type and index, whether it is the chief, its
rank and the number of workers. Every problem is a ValueError naming `TF_CONFIG`.
"""

import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class Task:
    """This process's place in the cluster, from `TF_CONFIG`.

    Attributes:
        cluster: dict, job name -> list of `host:port` addresses.
        type: str, `chief` or `worker`.
        index: int, the task's index in its job.
    """

    cluster: dict
    type: str
    index: int

    @property
    def num_workers(self):
        return sum(len(self.cluster.get(job, ())) for job in ("chief", "worker"))

    @property
    def is_chief(self):
        if "chief" in self.cluster:
            return self.type == "chief"
        return self.type == "worker" and self.index == 0

    @property
    def rank(self):
        """0 for the chief, then the workers in order (the collective's order)."""
        return self.index + (1 if "chief" in self.cluster and self.type == "worker" else 0)

    @property
    def label(self):
        return f"{self.type} {self.index}"


def _bad(problem, text):
    shown = text if len(text) <= 300 else text[:300] + "..."
    return ValueError(
        f"`TF_CONFIG` must describe this task's cluster for --strategy multi_worker: "
        f"{problem}. Received: TF_CONFIG={shown!r}"
    )


def _address(value):
    if not isinstance(value, str) or ":" not in value:
        return False
    port = value.rsplit(":", 1)[1]
    return port.isdigit() and 0 < int(port) < 65536


def task_from_environment(environ=None):
    """Parses and checks `TF_CONFIG`; returns the `Task`.

    Raises:
        ValueError: naming `TF_CONFIG` and the problem: unset or malformed JSON, no
            `cluster` or `task`, a job other than `chief`/`worker`, an address that is
            not `host:port`, no chief (neither a `chief` job of one address nor a
            `worker` job whose task 0 acts as chief), or a task type or index the
            cluster does not have.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "")
    if not text.strip():
        raise _bad("it is unset or empty", text)
    try:
        spec = json.loads(text)
    except ValueError as error:
        raise _bad(f"it is not valid JSON ({error})", text) from None
    if not isinstance(spec, dict):
        raise _bad("it must be a JSON object with `cluster` and `task`", text)
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _bad("`cluster` is missing or not an object of job -> addresses", text)
    if not isinstance(task, dict):
        raise _bad("`task` is missing or not an object with `type` and `index`", text)
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise _bad(
                f"job {job!r} is not supported (MultiWorkerMirroredStrategy uses `chief` "
                "and `worker` jobs only)",
                text,
            )
        if not isinstance(addresses, list) or not all(_address(a) for a in addresses):
            raise _bad(f"job {job!r} must be a list of 'host:port' addresses", text)
    everyone = [a for job in ("chief", "worker") for a in cluster.get(job, ())]
    if len(set(everyone)) != len(everyone):
        raise _bad("an address appears twice in `cluster`", text)
    if not cluster.get("chief") and not cluster.get("worker"):
        raise _bad("the cluster has no chief (no `chief` job and no `worker` 0)", text)
    if "chief" in cluster and len(cluster["chief"]) != 1:
        raise _bad(
            f"the `chief` job must have exactly one address, not {len(cluster['chief'])}", text
        )
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise _bad(f"task type {kind!r} is not a job of `cluster` ({sorted(cluster)})", text)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise _bad(
            f"task index {index!r} is out of range: job {kind!r} has {len(cluster[kind])} "
            f"address(es), so the index must be in [0, {len(cluster[kind]) - 1}]",
            text,
        )
    return Task(
        {job: list(cluster[job]) for job in ("chief", "worker") if job in cluster}, kind, index
    )
