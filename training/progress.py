"""``Progress``: what ``keras-vit train`` prints while it runs (a tqdm bar per epoch, or a line every N steps).

A Keras callback in the distributed loop; ``model.fit`` has its own (``verbose``).
"""

import keras

from keras_vit.training.budget import global_step


class Progress(keras.callbacks.Callback):
    """A tqdm bar per epoch with the epoch's running loss and accuracy, or without it (``bar=False``) a
    ``step N/T: loss=..., accuracy=...`` line every ``log_every`` steps, and an ``epoch N: ...`` line per epoch.

    Args:
        enabled: False on non-chief workers.
        bar: a tqdm bar (``--progress``) rather than step lines.
        log_every: steps between step lines.
        total_steps: the planned steps (shown in step lines).
    """

    def __init__(self, enabled: bool, bar: bool, log_every: int, total_steps: int):
        super().__init__()
        self.enabled, self.bar_wanted, self.log_every, self.total_steps = enabled, bar, log_every, total_steps
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm import tqdm

        steps, epochs = self.params["steps"], self.params["epochs"]
        first = max(global_step(self) - epoch * steps, 0)
        self.bar = tqdm(total=steps, initial=first, desc=f"epoch {epoch + 1}/{epochs if epochs < 2**31 else '~'}",
                        disable=not (self.enabled and self.bar_wanted), dynamic_ncols=True, leave=True)

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self)
        self.bar.update(1)
        if "mean_loss" in logs:  # the epoch's running means over the applied steps
            self.bar.set_postfix(loss=f"{logs['mean_loss']:.4f}", acc=f"{logs['mean_accuracy']:.3f}")
        if step % self.log_every == 0 and self.enabled and not self.bar_wanted:
            print(f"step {step}/{self.total_steps}: loss={logs['loss']:.4g}, accuracy={logs['accuracy']:.3f}",
                  flush=True)
        if logs.get("stop") or self.model.stop_training:
            self.bar.close()

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()
        if self.enabled:
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in logs.items()), flush=True)
