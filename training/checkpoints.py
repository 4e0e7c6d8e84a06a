"""Crash-safe checkpoints: periodic ``tf.train.CheckpointManager`` saves and an atomic best ``.keras``.

``CheckpointManager`` records the latest checkpoint in its ``checkpoint`` state
file only after the data and index files are complete, so a process killed
mid-save leaves the previous checkpoint as the latest; leftover temporary
files of an interrupted save are removed on start. ``.keras`` files are written
through :func:`keras_vit.atomic.atomic_path`.

Under ``MultiWorkerMirroredStrategy`` every worker must take part in a save;
only the chief writes into the run folder, the others write to a scratch
folder and delete it (the TensorFlow multi-worker pattern).
"""

import glob
import logging
import os
import shutil
import tempfile

import tensorflow as tf

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

    def save(self, step: int) -> str:
        """Writes checkpoint ``step`` (all workers call this together)."""
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path
