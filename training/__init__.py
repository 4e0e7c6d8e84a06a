"""keras_vit.training: tf.distribute training from one CPU to many workers, and callbacks for ``model.fit``.

Modules, one role each: ``sources`` (where images come from), ``data`` (tf.data pipelines),
``augment`` (seeded augmentation), ``strategy`` (picks the tf.distribute strategy), ``recipe``
(AdamW, warmup-cosine, label smoothing, precision; ``recipe_for(model)`` for ``model.compile``), ``budget``
(``TimeBudget``: the learning rate follows the clock), ``preemption`` (``Preemption``: Keras'
``BackupAndRestore`` plus a save on SIGTERM), ``guard`` (``NonFiniteGuard``), ``loop`` (the distributed
train/eval step), ``checkpoints`` (crash-safe saves), ``history`` (CSV + TensorBoard), ``config``
(TrainConfig and config files in ``configs/``), ``run`` (``train(config)``), ``cli_train`` / ``cli_evaluate``.

The callbacks are the same in ``model.fit`` and in ``keras-vit train``'s loop, which runs them through
``keras.callbacks.CallbackList``:

    model.compile(**keras_vit.training.recipe_for(model, learning_rate=1e-3))
    model.fit(data, epochs=10**6, steps_per_epoch=100, callbacks=[
        keras_vit.training.TimeBudget(minutes=10, peak=1e-3, floor=1e-5, warmup_steps=100, directory="run"),
        keras_vit.training.NonFiniteGuard(), keras_vit.training.Preemption("run/backup", save_freq=100)])

TensorFlow backend only: ``strategy.get_strategy`` (which ``train`` calls first) raises
:class:`keras_vit.backend.TensorFlowOnlyError` under ``KERAS_BACKEND=jax`` or ``torch``; there,
``keras.distribution.DataParallel`` and ``model.fit`` are the multi-device path. Importing the
package checks nothing and imports no Keras (the public names load on first use), so ``keras-vit --help``
stays cheap on every backend.
"""

_PUBLIC = {"TimeBudget": "budget", "Preemption": "preemption", "NonFiniteGuard": "guard", "recipe_for": "recipe"}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'keras_vit.training' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"keras_vit.training.{_PUBLIC[name]}"), name)
