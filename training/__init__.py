"""keras_vit.training: tf.distribute training from one CPU to many workers.

Modules, one role each: ``sources`` (where images come from), ``data`` (tf.data pipelines),
``augment`` (seeded augmentation), ``strategy`` (picks the tf.distribute strategy), ``recipe``
(AdamW, warmup-cosine, label smoothing, precision), ``loop`` (the distributed train/eval step),
``checkpoints`` (crash-safe saves), ``history`` (CSV + TensorBoard), ``config`` (TrainConfig and
config files in ``configs/``), ``run`` (``train(config)``), ``cli_train`` / ``cli_evaluate``.

TensorFlow backend only: ``strategy.get_strategy`` (which ``train`` calls first) raises
:class:`keras_vit.backend.TensorFlowOnlyError` under ``KERAS_BACKEND=jax`` or ``torch``; there,
``keras.distribution.DataParallel`` and ``model.fit`` are the multi-device path. Importing the
package checks nothing, so ``keras-vit --help`` stays cheap on every backend.
"""
