"""``Preemption``: Keras' ``BackupAndRestore`` that also saves on SIGTERM/SIGINT at the current step and stops.

``keras.callbacks.BackupAndRestore`` already backs up the model and optimizer every ``save_freq`` batches
or epochs and restores them when ``fit`` is run again. This subclass adds what a preemptible job needs:

- SIGTERM or SIGINT (a scheduler's preemption, Ctrl-C) saves at the step in flight and raises
  :class:`~keras_vit.training.faults.Preempted` (exit code 75), so the rerun resumes at that step;
- every save is refused when the weights are not finite (``Diverged``, exit code 65);
- a save that fails on a full disk raises ``WriteFailed`` naming the file (exit code 74);
- the previous backup is kept (``double_checkpoint``): a damaged newest backup is reported and the one
  before it restored.

``model.fit`` starts an epoch from its first batch, so a rerun after a mid-epoch stop continues from the
saved weights, optimizer state and step (``optimizer.iterations``) but counts the interrupted epoch's
batches again; with a :class:`~keras_vit.training.budget.TimeBudget` the clock, not the epoch count,
ends the run.

Example:
    >>> callbacks = [Preemption("runs/backup"), TimeBudget(minutes=5, peak=1e-3)]  # doctest: +SKIP
    >>> model.fit(data, epochs=10**6, steps_per_epoch=100, callbacks=callbacks)  # doctest: +SKIP
"""

import os

import keras

from keras_vit.training.budget import global_step
from keras_vit.training.faults import Preempted, StopSignals, writing
from keras_vit.training.guard import check_finite, weights_finite


class Preemption(keras.callbacks.BackupAndRestore):
    """Backs up every ``save_freq`` (``"epoch"`` or N batches) and at a stop signal; restores on the next run.

    Args:
        backup_dir: a folder for this run's backups only (Keras removes it when ``fit`` completes,
            unless ``delete_checkpoint=False``).
        save_freq: ``"epoch"`` or a number of batches.
        delete_checkpoint: remove the backups when ``fit`` completes.

    Attributes:
        resumed_from: the step restored, or None.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint: bool = True):
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=True,
                         delete_checkpoint=delete_checkpoint)
        self.signals = StopSignals()
        self.resumed_from = None

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except OSError as error:  # BackupAndRestore falls back to the previous backup; say so
            if not os.path.exists(self._prev_weights_path):
                raise
            print(f"The newest backup {self._weights_path} is damaged ({type(error).__name__}: "
                  f"{str(error)[:120]}); resuming from the one before it.", flush=True)
            super().on_train_begin(logs)
        step = global_step(self)
        if step:
            self.resumed_from = step
            print(f"Resumed from {self.backup_dir} at step {step}.", flush=True)
        self.signals.__enter__()

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.signals.requested:
            step = global_step(self)
            self._save_model()
            self.signals.__exit__()
            raise Preempted(f"Stopped by {self.signals.requested} at step {step}: saved {self.backup_dir}; run the "
                            f"same command again to resume from step {step}.")

    def on_train_end(self, logs=None):
        self.signals.__exit__()
        super().on_train_end(logs)

    def _save_model(self):
        # BackupAndRestore's one save routine (its epoch, batch and our signal saves all come here).
        check_finite(weights_finite(self.model), global_step(self), f"the backup in {self.backup_dir} is intact")
        with writing(self._weights_path):
            super()._save_model()
