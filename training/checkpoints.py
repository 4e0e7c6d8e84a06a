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
"""

import glob
import logging
import os
import shutil
import tempfile

import tensorflow as tf

from keras_vit.training.faults import writing
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
        """Restores the newest complete checkpoint of the chief's folder, if any."""
        latest = tf.train.latest_checkpoint(self.directory)
        if latest is None:
            return False
        self.checkpoint.restore(latest).expect_partial()
        log.info("Resumed from %s", latest)
        return True

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
