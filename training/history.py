"""Training history: a CSV row per epoch (rewritten atomically) and TensorBoard scalars.

TensorBoard need not be installed: scalars are written with ``tf.summary.write``
and the scalar plugin's metadata (what ``tensorboard.summary.scalar`` writes).
On resume the CSV keeps only the epochs the restored checkpoint has finished,
so a crash never leaves duplicated or half-written rows.

``History`` is a Keras callback in ``keras-vit train``'s loop: TensorBoard scalars every ``log_every``
steps, a CSV row at every epoch end. A ``model.fit`` user has Keras' ``CSVLogger`` and ``TensorBoard`` for
the same; the loop keeps this one because a resumed run must drop the rows of epochs its checkpoint had not
finished (``CSVLogger(append=True)`` would keep them), the file is rewritten atomically, and a full disk
names the file (``WriteFailed``).
"""

import csv
import io
import os

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from keras_vit.atomic import atomic_write
from keras_vit.training.faults import writing


STEP_SCALARS = ("loss", "accuracy", "grad_norm", "skipped", "stop", "learning_rate")


class History(keras.callbacks.Callback):
    """Collects per-epoch metrics; writes ``history.csv`` and ``tensorboard/{train,eval}``.

    Args:
        output_dir: the run folder.
        enabled: False on non-chief workers (nothing is written).
        completed_epochs: on resume, rows of later epochs are dropped.
        log_every: steps between TensorBoard scalars of the step logs (as a callback).
    """

    def __init__(self, output_dir: str, enabled: bool = True, completed_epochs: int = 0, log_every: int = 50):
        super().__init__()
        self.path = os.path.join(output_dir, "history.csv")
        self.enabled, self.log_every = enabled, log_every
        self.rows = []
        if enabled and os.path.isfile(self.path):
            with open(self.path, newline="", encoding="utf-8") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < completed_epochs]
        self.writers = {}
        if enabled:
            for name in ("train", "eval"):
                self.writers[name] = tf.summary.create_file_writer(os.path.join(output_dir, "tensorboard", name))

    def scalars(self, kind: str, step: int, values: dict):
        """Writes TensorBoard scalars under ``kind`` (``train`` or ``eval``) at ``step``."""
        if not self.enabled:
            return
        metadata = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_SCALAR)
        metadata.plugin_data.plugin_name = "scalars"
        with writing(os.path.join(os.path.dirname(self.path), "tensorboard", kind)), \
                self.writers[kind].as_default(step=step):
            for key, value in values.items():
                tf.summary.write(key, tf.constant(float(value), tf.float32), metadata=metadata)

    def add_epoch(self, epoch: int, values: dict):
        """Appends the row of ``epoch`` and rewrites the CSV atomically."""
        if not self.enabled:
            return
        self.rows.append({"epoch": epoch, **{k: f"{float(v):.6g}" for k, v in values.items()}})
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        with writing(self.path):
            atomic_write(self.path, buffer.getvalue())
        self.flush()

    def on_train_batch_end(self, batch, logs=None):
        from keras_vit.training.budget import global_step

        step = global_step(self)
        if step % self.log_every == 0:
            self.scalars("train", step, {k: v for k, v in logs.items() if k in STEP_SCALARS})
        if logs.get("stop"):
            self.flush()  # the run stops after this step

    def on_epoch_end(self, epoch, logs=None):
        if "eval_accuracy" in logs:
            self.scalars("eval", int(logs["step"]), {"loss": logs["eval_loss"], "accuracy": logs["eval_accuracy"]})
        self.add_epoch(epoch, logs)

    def flush(self):
        """Flushes the TensorBoard files (a full disk raises ``WriteFailed`` naming the folder)."""
        for name, writer in self.writers.items():
            with writing(os.path.join(os.path.dirname(self.path), "tensorboard", name)):
                writer.flush()
