"""Multi-worker training: the strategy from `TF_CONFIG`, broadcasts from the chief, the loop.

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

import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from trainers.framework.backup import AtomicBackupAndRestore, BrokenBackupError
from trainers.framework.callbacks import StopOnNonFiniteLoss
from trainers.framework.config import COLLECTIVES
from trainers.framework.multiworker.cluster import task_from_environment


def make_strategy(collective="auto", environ=None):
    """`tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`, checked first.

    Must be called before any other TensorFlow operation of the process (TensorFlow
    configures its collectives when the strategy is made). Returns `(strategy, task)`.
    """
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


def worker_directory(task):
    """A new temporary directory for a non-chief worker's writes (remove it when done)."""
    return tempfile.mkdtemp(prefix=f"tfposenc-{task.type}{task.index}-")


def broadcast_from_chief(strategy, values):
    """The chief's `values` (a list of tensors or numbers) on every worker.

    An all-reduce sum in which every replica but the first (the chief's) contributes
    zeros; a collective, so every worker must call it at the same point.
    """
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
    return int(broadcast_from_chief(strategy, [tf.constant(int(value), tf.int64)])[0])


def broadcast_weights(strategy, model):
    """Assigns the chief's values of every model variable on every worker."""
    variables = list(model.weights)
    shared = broadcast_from_chief(strategy, [v.value for v in variables])
    for variable, value in zip(variables, shared):
        variable.assign(value)


def distribute(strategy, dataset):
    """`dataset` (global batches) as a distributed dataset, sharded by data."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _numpy_logs(logs):
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
    """`engines.fit_resumable` for `MultiWorkerMirroredStrategy`, on every worker.

    The same contract: `run_dir/backup` holds atomic backups (`AtomicBackupAndRestore`,
    written by every worker to its own `run_dir`; the chief's is the one resumed from,
    and broadcast), exactly `epochs` epochs are trained over all restarts, a NaN or
    infinite loss raises `NonFiniteLossError` (on every worker: the logs are
    reduced), an unusable backup `BrokenBackupError`. `callbacks` are Keras
    callbacks, called as `fit` calls them (epoch logs with `val_` entries, the batch
    logs of the step). Returns the `keras.callbacks.History`.
    """
    if steps_per_epoch is None:
        raise ValueError("`steps_per_epoch` is required with a multi-worker strategy.")
    backup = AtomicBackupAndRestore(
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
        except BrokenBackupError as error:
            start, problem = -1, error
    start = broadcast_number(strategy, start)
    if start < 0:
        raise problem or BrokenBackupError(
            "The chief's backup is unusable and was set aside; training again from the start."
        )
    if start > 0:
        broadcast_weights(strategy, model)
    verbose = 1 if verbose == "auto" else verbose
    callback_list = keras.callbacks.CallbackList(
        [StopOnNonFiniteLoss(os.path.basename(run_dir)), *callbacks, backup],
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
    "broadcast_from_chief",
    "broadcast_number",
    "broadcast_weights",
    "distribute",
    "fit_multi_worker",
    "make_strategy",
    "remove_worker_directory",
    "worker_directory",
]
