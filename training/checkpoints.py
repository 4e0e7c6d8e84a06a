"""Crash-safe checkpoints: periodic ``tf.train.CheckpointManager`` saves and an atomic best ``.keras``.

``CheckpointManager`` records the latest checkpoint in its ``checkpoint`` state
file only after the data and index files are complete, so a process killed
mid-save leaves the previous checkpoint as the latest; leftover temporary
files of an interrupted save are removed on start. ``.keras`` files are written
through :func:`keras_vit.atomic.atomic_path`.

Under ``MultiWorkerMirroredStrategy`` every worker must take part in a save;
only the chief writes into the run folder, the others write to a scratch
folder and delete it (the TensorFlow multi-worker pattern).

A save that fails (a full disk, a quota, an I/O error) removes what it wrote
of the new checkpoint, so the space is free again and the previous checkpoint
stays the latest, and raises :class:`~keras_vit.training.faults.WriteFailed`.
A newest checkpoint damaged after it was written (a truncated or missing file)
is reported and the one before it restored.

:class:`Checkpointing` is the callback that saves them in ``keras-vit train``'s loop: every
``checkpoint_every`` steps, at every epoch end (with ``best.keras`` when the evaluation improved), and
at once when a stop was requested; every save refuses non-finite weights.
"""

import glob
import logging
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_vit.atomic import atomic_path
from keras_vit.training.budget import global_step
from keras_vit.training.faults import Preempted, writing
from keras_vit.training.guard import check_finite
from keras_vit.training.strategy import is_chief

log = logging.getLogger("keras_vit.training")


class Checkpoints:
    """Saves and restores ``model``, ``optimizer`` and the run's counters.

    Args:
        directory: the run's checkpoint folder.
        strategy: the distribution strategy (decides who writes).
        max_to_keep: how many periodic checkpoints to keep.
        **trackables: what to save (``model=``, ``optimizer=``, ``step=`` ...).

    Example:
        >>> ckpt = Checkpoints("/tmp/run/checkpoints", strategy, model=model, step=step)  # doctest: +SKIP
        >>> ckpt.restore()   # True when it resumed  # doctest: +SKIP
    """

    def __init__(self, directory: str, strategy, max_to_keep: int = 3, **trackables):
        self.directory = directory
        self.chief = is_chief(strategy)
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.restored = None
        if self.chief:
            write_dir = directory
            os.makedirs(directory, exist_ok=True)
            for stale in glob.glob(os.path.join(directory, "*_temp*")):
                shutil.rmtree(stale, ignore_errors=True) if os.path.isdir(stale) else os.remove(stale)
        else:
            resolver = strategy.cluster_resolver
            write_dir = os.path.join(tempfile.gettempdir(), f"keras_vit_worker{resolver.task_id}_{os.getpid()}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, write_dir, max_to_keep=max_to_keep)

    def restore(self) -> bool:
        """Restores the newest checkpoint of the chief's folder that reads whole; says so when it skips one."""
        state = tf.train.get_checkpoint_state(self.directory)
        candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
        for index, prefix in enumerate(candidates):
            try:
                tf.train.load_checkpoint(prefix).get_variable_to_shape_map()  # reads the index
                self.checkpoint.restore(prefix).expect_partial()
            except (tf.errors.OpError, ValueError, IndexError, OSError) as error:  # truncated or missing files
                reason = " ".join(str(getattr(error, "message", error)).split())[:160]
                later = candidates[index + 1] if index + 1 < len(candidates) else None
                print(f"Checkpoint {prefix} is damaged ({type(error).__name__}: {reason}); "
                      + (f"resuming from the one before it, {later}." if later else "no earlier one is left; "
                         "starting over."), flush=True)
                continue
            log.info("Resumed from %s", prefix)
            self.restored = prefix
            return True
        return False

    def kept(self, out: str) -> str:
        """What a failed run leaves intact, in words: the newest checkpoint and ``out/best.keras``."""
        latest = self.latest_step()
        text = (f"the last checkpoint, step {latest}, is intact in {self.directory}" if latest is not None
                else "no checkpoint had been written yet")
        if os.path.isfile(os.path.join(out, "best.keras")):
            text += ", and so is best.keras"
        return text

    def latest_step(self):
        """The step of the newest complete checkpoint in the chief's folder, or None."""
        latest = tf.train.latest_checkpoint(self.directory)
        return None if latest is None else int(latest.rsplit("-", 1)[1])

    def save(self, step: int) -> str:
        """Writes checkpoint ``step`` (all workers call this together)."""
        prefix = os.path.join(self.manager.directory, f"ckpt-{step}")
        try:
            with writing(prefix):
                path = self.manager.save(checkpoint_number=step)
        except BaseException:
            if self.chief and tf.train.latest_checkpoint(self.directory) != prefix:
                for partial in glob.glob(prefix + ".*") + glob.glob(prefix + "_temp*"):
                    shutil.rmtree(partial, ignore_errors=True) if os.path.isdir(partial) else os.remove(partial)
            raise
        finally:
            if not self.chief:
                shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path


class Checkpointing(keras.callbacks.Callback):
    """Saves ``checkpoints`` every ``every`` steps and at epoch ends, ``best.keras`` on improvement, and stops
    on request: the loop's step reports ``stop`` (a signal reached any worker) and this saves that step and
    raises :class:`~keras_vit.training.faults.Preempted` (mid-epoch at once; at an epoch's end after it).

    Args:
        checkpoints: the run's :class:`Checkpoints`.
        every: steps between periodic saves.
        best: a variable holding the best evaluation accuracy (saved in the checkpoint, so a resumed run
            knows it); ``best.keras`` is written into ``out`` by the chief when it improves.
        out: the run folder.
        finite: a function telling whether the weights are finite (``Trainer.weights_finite``).
        signals: the run's :class:`~keras_vit.training.faults.StopSignals` (names the signal).
        fixes: what to change when the weights went non-finite.
    """

    def __init__(self, checkpoints: Checkpoints, every: int, best, out: str, finite, signals, fixes: str = ""):
        super().__init__()
        self.checkpoints, self.every, self.best, self.out = checkpoints, every, best, out
        self.finite, self.signals, self.fixes = finite, signals, fixes
        self._stop = False

    def kept(self) -> str:
        return self.checkpoints.kept(self.out)

    def _guard(self, step: int):
        check_finite(self.finite(), step, self.kept(), self.fixes)

    def save(self, step: int) -> str:
        """Checkpoint ``step`` (every worker calls this together)."""
        self._guard(step)
        return self.checkpoints.save(step)

    def save_model(self, path: str, step: int):
        """``model.save`` to ``path`` atomically (chief only)."""
        self._guard(step)
        with writing(path), atomic_path(path) as temporary:
            self.model.save(temporary)

    def on_train_batch_end(self, batch, logs=None):
        step, steps_per_epoch = global_step(self), self.params["steps"]
        self._stop = bool(logs.get("stop"))
        if self._stop and step % steps_per_epoch:  # at an epoch's end, finish the epoch first
            self.preempt(step, self.save(step))
        if step % self.every == 0 and step % steps_per_epoch:
            self.save(step)

    def on_epoch_end(self, epoch, logs=None):
        step = global_step(self)
        if logs.get("eval_accuracy", -1.0) > float(self.best.numpy()):
            self.best.assign(logs["eval_accuracy"])
            if self.checkpoints.chief:
                self.save_model(os.path.join(self.out, "best.keras"), step)
        path = self.save(step)
        last = epoch + 1 == self.params["epochs"] or self.model.stop_training
        if self._stop and not last:
            self.preempt(step, path)

    def preempt(self, step: int, path: str):
        cause = f"by {self.signals.requested}" if self.signals.requested else "because another worker was signalled"
        raise Preempted(f"Stopped {cause} at step {step}: saved {path}; run the same command again to resume "
                        f"from step {step}.")
