"""Atomic, checked training backups: `AtomicBackupAndRestore` and `BrokenBackupError`.

Keras' `BackupAndRestore` writes its weights file and epoch counter in place, so a kill
mid-write leaves a truncated backup. `AtomicBackupAndRestore` writes each backup to
`incoming/` and swaps it in by renames, rolls an interrupted swap forward or back on
start, and sets an incomplete or unloadable backup aside raising `BrokenBackupError`.
Also usable from a training loop of one's own (`restore`).
"""

import json
import os
import shutil
import time

import keras


class BrokenBackupError(RuntimeError):
    """A training backup was incomplete or unreadable and has been set aside."""


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backups survive a kill at any instant, and are checked.

    Keras writes the weights file and the epoch counter in place, so a kill during the
    write leaves a truncated HDF5 file (seen in this project's kill test). Here each
    backup is written to `incoming/`, then swapped in by renames (`state` -> `state.old`,
    `incoming` -> `state`); on start an interrupted swap is rolled forward or back, so
    the weights and the epoch counter always come from the same finished epoch.

    A backup is used only when complete and loadable. A `state/` with a missing,
    truncated or foreign weights file or an unreadable epoch counter is renamed to
    `broken-<time>/` and `BrokenBackupError` is raised, naming both: the caller rebuilds
    the model and trains that combination from the start.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self._state = os.path.join(backup_dir, "state")
        self._old = os.path.join(backup_dir, "state.old")
        self._incoming = os.path.join(backup_dir, "incoming")
        self._weights_path = os.path.join(self._state, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self._state, "training_metadata.json")

    def _recover(self):
        if not os.path.isdir(self._state) and os.path.isdir(self._old):
            os.rename(self._old, self._state)
        shutil.rmtree(self._old, ignore_errors=True)
        shutil.rmtree(self._incoming, ignore_errors=True)

    def _problem(self):
        if not os.path.isfile(self._weights_path):
            return "the weights file latest.weights.h5 is missing"
        try:
            with open(self._training_metadata_path) as f:
                epoch = json.load(f)["epoch"]
            if not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"epoch={epoch!r}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"training_metadata.json is unreadable ({type(error).__name__}: {error})"
        try:
            self._load_model()
        except Exception as error:  # h5py, shape or structure mismatch: all mean unusable
            return f"the weights do not load ({type(error).__name__}: {error})"
        return None

    def restore(self):
        """For a training loop of one's own: recovers, checks and loads the backup into
        the model (as `on_train_begin` does for `fit`) and returns the number of epochs
        it holds (0 on a fresh start); `on_train_begin` then does nothing.

        Raises:
            BrokenBackupError: the backup was unusable (it has been set aside).
        """
        self.on_train_begin()
        self._restored = True
        if not os.path.isdir(self._state):
            return 0
        with open(self._training_metadata_path) as f:
            return int(json.load(f)["epoch"])

    def on_train_begin(self, logs=None):
        if getattr(self, "_restored", False):
            return
        self._recover()
        if not os.path.isdir(self._state):
            return  # a fresh start
        problem = self._problem()
        if problem:
            aside = os.path.join(self.backup_dir, time.strftime("broken-%Y%m%d-%H%M%S"))
            os.rename(self._state, aside)
            raise BrokenBackupError(
                f"The backup {self._state} is unusable: {problem}. Set aside as {aside}."
            )

    def _save_model(self):
        shutil.rmtree(self._incoming, ignore_errors=True)
        os.makedirs(self._incoming)
        self.model.save_weights(os.path.join(self._incoming, "latest.weights.h5"), overwrite=True)
        with open(os.path.join(self._incoming, "training_metadata.json"), "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        if os.path.isdir(self._state):
            os.rename(self._state, self._old)
        os.rename(self._incoming, self._state)
        shutil.rmtree(self._old, ignore_errors=True)
