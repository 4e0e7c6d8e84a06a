"""``NonFiniteGuard``: a non-finite loss or gradient ends the run with its step and the usual cures; nothing
non-finite is ever saved.

Keras' ``TerminateOnNaN(raise_error=True)`` stops ``fit`` on a NaN loss too; this guard adds what a run
needs to be rerun: the step, what was kept (``kept``), what to change (``fixes``), the
:class:`~keras_vit.training.faults.Diverged` exit code (65) and, in ``keras-vit train``'s loop (whose step
reports ``skipped`` when it did not apply a non-finite update), ``on_nan="skip"``. Every save of a run
(checkpoints, ``best.keras``, ``model.keras``, the budget's) first calls :func:`check_finite`.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(1e30), "mse")
    >>> try:
    ...     model.fit(np.ones((8, 1)) * 1e30, np.zeros(8), verbose=0, callbacks=[NonFiniteGuard()])
    ... except Diverged as error:
    ...     print(str(error)[:38])
    Training diverged at step 1: the loss
"""

import logging
import math

import keras
import numpy as np

from keras_vit.training.budget import global_step
from keras_vit.training.faults import Diverged

log = logging.getLogger("keras_vit.training")


def weights_finite(model) -> bool:
    """True when every floating-point weight of ``model`` is finite."""
    return all(np.isfinite(keras.ops.convert_to_numpy(w.value)).all() for w in model.weights
               if "float" in str(w.dtype))


def check_finite(finite: bool, step: int, kept: str, fixes: str = "") -> None:
    """Raises :class:`Diverged` before a save of weights that are not ``finite``."""
    if not finite:
        raise Diverged(f"Training diverged by step {step}: the weights are no longer finite, though the loss still "
                       f"was. Nothing of it was saved; {kept}. " + fixes)


class NonFiniteGuard(keras.callbacks.Callback):
    """Raises :class:`Diverged` on a non-finite loss (or, in the loop, a skipped step).

    Args:
        on_nan: ``"stop"``, or ``"skip"`` where the training step itself skips a non-finite update
            (``keras-vit train``'s loop); then only ``skip_limit`` such steps in a row end the run.
        fixes: what to try, appended to the message.
        kept: a function returning what is still intact on disk ("the last checkpoint, step 20, ...").
    """

    SKIP_LIMIT = 20  # consecutive skipped steps after which on_nan="skip" gives up

    def __init__(self, on_nan: str = "stop", fixes: str = "", kept=None):
        super().__init__()
        self.on_nan, self.fixes, self.kept = on_nan, fixes, kept
        self.skipped = self.in_a_row = 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if "skipped" in logs:  # the loop's step: not applied when its loss or gradient norm was not finite
            bad, applied = bool(logs["skipped"]), False
        else:  # model.fit applied it already
            bad, applied = not math.isfinite(float(logs.get("loss", 0.0))), True
        if not bad:
            self.in_a_row = 0
            return
        self.skipped, self.in_a_row = self.skipped + 1, self.in_a_row + 1
        step = global_step(self)
        what = f"the loss is {float(logs['loss']):g}" + (
            f" and the gradient norm {float(logs['grad_norm']):g}" if "grad_norm" in logs else "")
        if self.on_nan == "stop" or applied or self.in_a_row >= self.SKIP_LIMIT:
            how = f" ({self.in_a_row} steps in a row skipped)" if self.on_nan == "skip" and not applied else ""
            done = "It was applied but" if applied else "The step was not applied and"
            kept = self.kept() if self.kept else "nothing was saved after it"
            raise Diverged(f"Training diverged at step {step}: {what}{how}. {done} nothing of it was saved; "
                           f"{kept}. " + self.fixes)
        log.warning("Step %d: %s; the update was skipped (--on-nan skip).", step, what)
