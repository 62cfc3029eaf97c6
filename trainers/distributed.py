"""Multi-worker training: `TF_CONFIG`, the strategy, who writes where, and the loop.

`model.fit` under `MultiWorkerMirroredStrategy` fails in Keras 3 (keras-team/keras#20585:
"Attempt to convert a value (PerReplica:{...})" on every worker), so `fit_multi_worker`
trains with a loop of its own: `strategy.run` of the model's public `train_step` (a
`GradientTape` step with the Keras model and optimizer; Keras' losses divide each
replica's mean by the replicas in sync, which is `tf.nn.compute_average_loss` with the
global batch size, and the optimizer sums the gradients of all replicas), the step's
metrics reduced with `strategy.reduce`, and the same Keras callbacks `fit` would call
(TensorBoard, JSON lines, learning rate, atomic backups, the NaN stop).

Every worker runs the same program, so the collectives line up; what differs is where
it writes and where decisions come from:

- The chief (task `chief`, or `worker` 0 when the cluster has no chief) writes the run
  directory (`--out`). Every other worker writes what the same code writes to a
  temporary directory of its own (`worker_directory`), removed when it finishes, as
  TensorFlow's multi-worker guide prescribes.
- What is read from the run directory (is a combination finished, the epoch a backup
  resumes from, the resumed weights) is read by the chief and broadcast to all workers
  (`broadcast_from_chief`), so workers need no shared filesystem.
- Each worker reads a distinct shard of every global batch: the training dataset is
  distributed with `AutoShardPolicy.DATA` (grid canvases are generated, there are no
  files to shard), which splits each global batch of `batch_size` into per-replica
  slices; the global batch, and so the training, is the one a single worker would see.
- All workers start from the same weights: `MultiWorkerMirroredStrategy` broadcasts
  each variable's initial value from the chief.
"""

import dataclasses
import json
import os
import shutil
import tempfile
import time

from trainers.vocabulary import COLLECTIVES


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


def make_strategy(collective="auto", environ=None):
    """`tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`, checked first.

    Must be called before any other TensorFlow operation of the process (TensorFlow
    configures its collectives when the strategy is made). Returns `(strategy, task)`.
    """
    import tensorflow as tf

    if collective not in COLLECTIVES:
        raise ValueError(
            f"`collective` must be one of {COLLECTIVES}. Received: collective={collective!r}"
        )
    task = task_from_environment(environ)
    implementation = getattr(
        tf.distribute.experimental.CommunicationImplementation, collective.upper()
    )
    options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), task


def is_multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_directory(task):
    """A new temporary directory for a non-chief worker's writes (remove it when done)."""
    return tempfile.mkdtemp(prefix=f"tfposenc-{task.type}{task.index}-")


def broadcast_from_chief(strategy, values):
    """The chief's `values` (a list of tensors or numbers) on every worker.

    An all-reduce sum in which every replica but the first (the chief's) contributes
    zeros; a collective, so every worker must call it at the same point.
    """
    import tensorflow as tf

    values = [tf.convert_to_tensor(v) for v in values]

    @tf.function
    def share(*values):
        def replica(*values):
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            kept = [tf.where(first, v, tf.zeros_like(v)) for v in values]
            return context.all_reduce(tf.distribute.ReduceOp.SUM, kept)

        return strategy.run(replica, args=values)

    shared = share(*values)
    return [strategy.experimental_local_results(v)[0] for v in shared]


def broadcast_number(strategy, value):
    """An integer from the chief (e.g. a flag or an epoch) on every worker."""
    import tensorflow as tf

    return int(broadcast_from_chief(strategy, [tf.constant(int(value), tf.int64)])[0])


def broadcast_weights(strategy, model):
    """Assigns the chief's values of every model variable on every worker."""
    variables = list(model.weights)
    shared = broadcast_from_chief(strategy, [v.value for v in variables])
    for variable, value in zip(variables, shared):
        variable.assign(value)


def distribute(strategy, dataset):
    """`dataset` (global batches) as a distributed dataset, sharded by data."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _numpy_logs(logs):
    import numpy as np

    return {k: float(np.asarray(v)) for k, v in logs.items()}


def fit_multi_worker(
    model,
    strategy,
    task,
    train,
    epochs,
    run_dir,
    validation=None,
    steps_per_epoch=None,
    callbacks=(),
    verbose="auto",
    delete_backup=False,
):
    """`core.fit_resumable` for `MultiWorkerMirroredStrategy`, on every worker.

    The same contract: `run_dir/backup` holds atomic backups (`core.AtomicBackupAndRestore`,
    written by every worker to its own `run_dir`; the chief's is the one resumed from,
    and broadcast), exactly `epochs` epochs are trained over all restarts, a NaN or
    infinite loss raises `core.NonFiniteLossError` (on every worker: the logs are
    reduced), an unusable backup `core.BrokenBackupError`. `callbacks` are Keras
    callbacks, called as `fit` calls them (epoch logs with `val_` entries, the batch
    logs of the step). Returns the `keras.callbacks.History`.
    """
    import keras
    import tensorflow as tf

    from trainers import core

    if steps_per_epoch is None:
        raise ValueError("`steps_per_epoch` is required with a multi-worker strategy.")
    backup = core.AtomicBackupAndRestore(
        os.path.join(run_dir, "backup"), delete_checkpoint=delete_backup
    )
    with strategy.scope():
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # variables: a collective
    backup.set_model(model)
    start, problem = 0, None
    if task.is_chief:
        try:
            start = backup.restore()
        except core.BrokenBackupError as error:
            start, problem = -1, error
    start = broadcast_number(strategy, start)
    if start < 0:
        raise problem or core.BrokenBackupError(
            "The chief's backup is unusable and was set aside; training again from the start."
        )
    if start > 0:
        broadcast_weights(strategy, model)
    verbose = 1 if verbose == "auto" else verbose
    callback_list = keras.callbacks.CallbackList(
        [core.StopOnNonFiniteLoss(os.path.basename(run_dir)), *callbacks, backup],
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    iterator = iter(distribute(strategy, train))
    validation = None if validation is None else distribute(strategy, validation)

    @tf.function
    def train_step(iterator):
        logs = strategy.run(model.train_step, args=(next(iterator),))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    @tf.function
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(start, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            callback_list.on_train_batch_end(step, _numpy_logs(train_step(iterator)))
        logs = _numpy_logs(model.get_metrics_result())  # exact over all replicas
        if validation is not None:
            model.reset_metrics()
            callback_list.on_test_begin()
            for step, batch in enumerate(validation):
                callback_list.on_test_batch_begin(step)
                test_step(batch)
                callback_list.on_test_batch_end(step)
            values = _numpy_logs(model.get_metrics_result())
            callback_list.on_test_end(values)
            logs.update({f"val_{k}": v for k, v in values.items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history


def remove_worker_directory(path, attempts=3):
    """Removes a worker's temporary directory (retrying briefly: writers may lag)."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.2)


__all__ = [
    "Task",
    "broadcast_from_chief",
    "broadcast_number",
    "broadcast_weights",
    "distribute",
    "fit_multi_worker",
    "is_multi_worker",
    "make_strategy",
    "remove_worker_directory",
    "task_from_environment",
    "worker_directory",
]
