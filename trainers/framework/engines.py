"""Training engines: how one process of a run fits, writes and agrees on decisions.

The runner asks its engine (made by `trainers.framework.strategy.make_engine`) four
things and never looks at the strategy's kind itself:

- `fit(model, train, epochs, checkpoints, ...)`: train exactly `epochs` epochs in all,
  resuming from the atomic backup in `checkpoints/backup` after a kill;
- `writes`: whether this process writes the run directory (results, reports);
- `directory(out)`: where this process writes (a context manager: `out` itself, or a
  temporary directory of a non-writing worker, removed at the end);
- `agree(flags)`: the writer's answer to a yes/no question per combination (is it
  finished?), the same on every process;
- `finish()`: the end of the run (workers wait for the writer's report).

`SingleProcess` wraps a one-process `tf.distribute` strategy (one device, or mirrored
over several): `fit` is `model.fit` with `AtomicBackupAndRestore`. `MultiWorker` wraps
`MultiWorkerMirroredStrategy` and this task's place in `TF_CONFIG`: `fit` is
`trainers.framework.multiworker.loop.fit_multi_worker` (Keras 3's `fit` is broken
there, keras-team/keras#20585), the chief writes, the others write to scratch.
"""

import contextlib
import os

import tensorflow as tf

from trainers.framework.backup import AtomicBackupAndRestore
from trainers.framework.callbacks import StopOnNonFiniteLoss
from trainers.framework.multiworker import loop


def fit_resumable(
    model,
    train,
    epochs,
    run_dir,
    validation=None,
    steps_per_epoch=None,
    callbacks=(),
    verbose="auto",
    delete_backup=False,
):
    """`model.fit` that survives being killed: `AtomicBackupAndRestore` in `run_dir/backup`.

    Started again with the same `run_dir`, it resumes after the last finished epoch and
    trains exactly `epochs` epochs in all. The final backup is kept by default, so a
    process killed after training (while evaluating or exporting) restarts without
    training again; delete `run_dir` once the results are safe. A NaN or infinite loss
    raises `NonFiniteLossError`; an unusable backup raises `BrokenBackupError`.
    """
    backup = AtomicBackupAndRestore(
        os.path.join(run_dir, "backup"), delete_checkpoint=delete_backup
    )
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        # The divergence check first (a diverged epoch is neither logged nor committed);
        # the backup last: an epoch is logged before it is committed, so a kill in
        # between retrains (and re-logs) that epoch instead of losing its record.
        callbacks=[StopOnNonFiniteLoss(os.path.basename(run_dir)), *callbacks, backup],
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )


class SingleProcess:
    """One process: a one-device or mirrored `tf.distribute` strategy."""

    writes = True

    def __init__(self, strategy):
        self.strategy = strategy

    @property
    def description(self):
        """What `config.json` and `results.json` record under `distribution`."""
        return {
            "strategy": type(self.strategy).__name__,
            "replicas_in_sync": self.strategy.num_replicas_in_sync,
            "workers": 1,
        }

    @property
    def place(self):
        """This process's place in words, for the run's first line ("" alone)."""
        return ""

    def fit(self, model, train, epochs, checkpoints, **options):
        return fit_resumable(model, train, epochs, checkpoints, **options)

    @contextlib.contextmanager
    def directory(self, out):
        yield out

    def agree(self, flags):
        return [bool(f) for f in flags]

    def finish(self):
        pass


class MultiWorker:
    """One worker of a `MultiWorkerMirroredStrategy` cluster (`TF_CONFIG`)."""

    def __init__(self, strategy, task):
        self.strategy = strategy
        self.task = task

    @property
    def writes(self):
        return self.task.is_chief

    @property
    def description(self):
        return {
            "strategy": type(self.strategy).__name__,
            "replicas_in_sync": self.strategy.num_replicas_in_sync,
            "workers": self.task.num_workers,
        }

    @property
    def place(self):
        chief = " (chief)" if self.task.is_chief else ""
        return f", {self.task.label} of {self.task.num_workers} workers{chief}"

    def fit(self, model, train, epochs, checkpoints, **options):
        return loop.fit_multi_worker(
            model, self.strategy, self.task, train, epochs, checkpoints, **options
        )

    @contextlib.contextmanager
    def directory(self, out):
        """`out` on the chief; elsewhere a temporary directory, removed at the end
        (every worker saves and exports too: saving may need every worker)."""
        if self.writes:
            yield out
            return
        scratch = loop.worker_directory(self.task)
        try:
            yield scratch
        finally:
            loop.remove_worker_directory(scratch)

    def agree(self, flags):
        shared = tf.constant([int(bool(f)) for f in flags], tf.int64)
        return [bool(f) for f in loop.broadcast_from_chief(self.strategy, [shared])[0].numpy()]

    def finish(self):
        loop.broadcast_number(self.strategy, 1)  # workers end after the chief's report


__all__ = ["MultiWorker", "SingleProcess", "fit_resumable"]
