"""``train(config)``: data, strategy, model, recipe, the loop, checkpoints and resume, in one place.

Example:
    >>> from keras_vit.training.config import TrainConfig, smoke
    >>> summary = train(smoke(TrainConfig(model="vit_test", data="cifar10", output_dir="/tmp/r")))  # doctest: +SKIP
    >>> summary["steps"]  # doctest: +SKIP
    8
"""

import dataclasses
import json
import logging
import os
import time

from keras_vit.atomic import atomic_path, atomic_write
from keras_vit.training.config import TrainConfig
from keras_vit.training.faults import (FolderLock, StopSignals, WorkerLost, WriteFailed, divergence_fixes, lost_peer,
                                       writing)

log = logging.getLogger("keras_vit.training")


def _sources(config):
    from keras_vit.training import sources

    train_source = sources.load_source(config.data, "train", config.data_dir)
    train_source = sources.subset(train_source, config.max_train_examples, config.seed)
    eval_source = None
    if config.eval_data != "none":
        eval_source = sources.load_source(config.eval_data or config.data, "test", config.data_dir,
                                          class_names=getattr(train_source, "class_names", None))
        eval_source = sources.subset(eval_source, config.max_eval_examples, config.seed)
    return train_source, eval_source


def _datasets(config, strategy, train_source, eval_source, contract, steps_per_epoch, start_step):
    from keras_vit.training import data

    augment = config.augment
    batch = config.batch_size

    def train_fn(ctx):
        return data.train_dataset(train_source, contract, batch_size=ctx.get_per_replica_batch_size(batch),
            steps_per_epoch=steps_per_epoch, seed=config.seed, start_step=start_step, augment=augment,
            input_context=ctx)

    def eval_fn(ctx):
        return data.eval_dataset(eval_source, contract, batch_size=ctx.get_per_replica_batch_size(batch),
                                 global_batch_size=batch, num_pipelines=ctx.num_input_pipelines,
                                 pipeline_id=ctx.input_pipeline_id)

    train_ds = strategy.distribute_datasets_from_function(train_fn)
    eval_ds = strategy.distribute_datasets_from_function(eval_fn) if eval_source is not None else None
    return train_ds, eval_ds


def _digest(model) -> str:
    """SHA-256 of every weight's bytes: equal on two workers only if their weights are identical."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()


def train(config: TrainConfig, callbacks=()) -> dict:
    """Trains (or resumes) a run described by ``config``; returns the final summary.

    Writes into ``config.output_dir``: ``checkpoints/`` (periodic, resumable),
    ``best.keras`` (highest eval accuracy), ``model.keras`` (final),
    ``history.csv``, ``tensorboard/``, ``config.json`` and ``summary.json``. The
    saved models carry their input contract and the data's class names. Running
    the same config again resumes from the newest checkpoint and stops at the
    planned number of steps. The folder is locked while the run holds it.

    Args:
        config: the run.
        callbacks: more ``keras.callbacks.Callback`` objects, run after the run's own (step logs hold
            ``loss``, ``accuracy``, ``grad_norm``, ``skipped``, ``stop``, ``learning_rate``).

    Raises:
        keras_vit.training.faults.Preempted: SIGTERM/SIGINT; a checkpoint of the current step was saved.
        keras_vit.training.faults.WriteFailed: a write failed (full disk ...); earlier files are intact.
        keras_vit.training.faults.Diverged: a non-finite loss or gradient (``on_nan="stop"``).
        keras_vit.training.faults.WorkerLost: a peer of a multi-worker run was lost.
        keras_vit.training.faults.FolderLocked: another live run holds ``output_dir``.
    """
    started = time.time()  # before importing TensorFlow: a --time-budget includes it
    import tensorflow as tf

    from keras_vit.training.strategy import get_strategy, is_chief, multi_worker, split_cpu

    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    if config.logical_cpus:
        split_cpu(config.logical_cpus)
    strategy = get_strategy(config.strategy, config.tpu)
    with FolderLock(config.output_dir, enabled=is_chief(strategy)), StopSignals() as signals:
        run = _build(config, strategy, started, signals)
        try:
            return _finish(run, _fit(run, list(callbacks)))
        except WriteFailed as error:
            raise WriteFailed(error.path, error.reason, run.saver.kept() + "; free space and run the same "
                              "command again to resume.") from error
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                tf.errors.AbortedError) as error:
            if not multi_worker(strategy):
                raise
            raise WorkerLost(f"Lost contact with {lost_peer(error)} after step {int(run.step.numpy())}; "
                             f"{run.saver.kept()}. Restart every worker with the same command to resume.") from error


@dataclasses.dataclass
class _Run:
    """Everything one run's loop and callbacks share (built once by :func:`_build`)."""

    config: TrainConfig
    strategy: object
    model: object
    optimizer: object
    trainer: object
    step: object
    best: object
    saver: object
    budget: object
    schedule: object
    steps_per_epoch: int
    total_steps: int
    start_step: int
    resumed: bool
    chief: bool
    policy: str
    started: float
    signals: object
    datasets: tuple = ()
    train_source: object = None
    eval_source: object = None
    report: object = None  # the checkpoint's load report (config.weights)


def _build(config, strategy, started, signals) -> _Run:
    """Data, model, optimizer, checkpoints (restored), the trainer and the datasets; prints the run's first line."""
    import keras
    import tensorflow as tf

    from keras_vit.training import recipe
    from keras_vit.training.checkpoints import Checkpoints, Checkpointing
    from keras_vit.training.loop import Trainer
    from keras_vit.training.strategy import is_chief, split_batch

    chief = is_chief(strategy)
    per_replica = split_batch(config.batch_size, strategy)
    keras.utils.set_random_seed(config.seed)
    policy = recipe.resolve_precision(config.precision, strategy)
    train_source, eval_source = _sources(config)
    num_classes = len(train_source.class_names)
    overrides = {"drop_path_rate": config.drop_path_rate, "dropout_rate": config.dropout_rate,
                 "num_classes": num_classes, "class_names": list(train_source.class_names), **config.model_overrides}
    steps_per_epoch = config.steps_per_epoch or train_source.num_examples // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size={config.batch_size} exceeds the {train_source.num_examples} training "
                         f"examples; use a smaller batch_size.")
    peak = recipe.scaled_learning_rate(config.learning_rate, config.batch_size, config.base_batch_size,
                                       config.lr_scaling)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    schedule = recipe.warmup_cosine(peak, warmup, config.epochs * steps_per_epoch, config.min_learning_rate)
    budget = None
    if config.time_budget:  # the learning rate follows the clock (training/budget.py)
        from keras_vit.training.budget import TimeBudget

        budget = TimeBudget(config.time_budget, peak, config.min_learning_rate, warmup, started,
                            directory=config.output_dir if chief else None)
    with strategy.scope():
        model, report = _model(config, None if policy == "float32" else policy, overrides)
        optimizer = _optimizer(config, model, 0.0 if budget else schedule, policy)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        best = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_accuracy")
    out = config.output_dir
    checkpoints = Checkpoints(os.path.join(out, "checkpoints"), strategy, config.keep_checkpoints,
                              model=model, optimizer=optimizer, step=step, best=best)
    resumed = checkpoints.restore()
    start_step = int(step.numpy())
    if chief:
        with writing(os.path.join(out, "config.json")):
            atomic_write(os.path.join(out, "config.json"), config.to_json())
    trainer = Trainer(model, optimizer, strategy, global_batch_size=config.batch_size,
                      label_smoothing=config.label_smoothing, clip_norm=config.clip_norm,
                      jit_compile=config.jit_compile)
    saver = Checkpointing(checkpoints, config.checkpoint_every, best, out, trainer.weights_finite, signals,
                          divergence_fixes(config, policy))
    run = _Run(config=config, strategy=strategy, model=model, optimizer=optimizer, trainer=trainer, step=step,
               best=best, saver=saver, budget=budget, schedule=schedule, steps_per_epoch=steps_per_epoch,
               total_steps=config.epochs * steps_per_epoch, start_step=start_step, resumed=resumed, chief=chief,
               policy=policy, started=started, signals=signals, train_source=train_source, eval_source=eval_source,
               report=report)
    run.datasets = _datasets(config, strategy, train_source, eval_source, model.preprocessing,
                             steps_per_epoch, start_step)
    if chief:
        print(f"Training {config.model} ({model.count_params():,} params, {policy}) on "
              f"{train_source.num_examples} images of {config.data!r}, {type(strategy).__name__} x"
              f"{strategy.num_replicas_in_sync} (per-replica batch {per_replica}), {config.epochs} epochs x "
              f"{steps_per_epoch} steps, peak lr {peak:.3g}" + (f"; resumed at step {start_step}" if resumed else ""))
    return run


def _model(config, dtype, overrides: dict):
    """A new model, or (``config.weights``) a checkpoint's encoder with a zero head for this data's classes."""
    if not config.weights:
        from keras_vit.factory import create_model

        return create_model(config.model, dtype=dtype, **overrides), None
    from keras_vit.training.transfer import transfer_model

    overrides = dict(overrides)
    class_names = overrides.pop("class_names")
    overrides.pop("num_classes")
    model, report = transfer_model(config.model, config.weights, class_names, None, config.weights_source,
                                   dtype=dtype, **overrides)
    print(report.summary())
    if config.mean is not None or config.std is not None:
        contract = model.preprocessing
        model.set_contract(dataclasses.replace(contract, mean=tuple(config.mean or contract.mean),
                                               std=tuple(config.std or contract.std)))
    contract = model.preprocessing
    print(f"Preprocessing contract: mean={contract.mean} std={contract.std} size={contract.image_size}")
    return model, report


def _optimizer(config, model, learning_rate, policy: str):
    """AdamW without decay on norms, biases and embeddings, or (the transfer recipe) SGD with momentum, built."""
    from keras_vit.training import recipe

    if config.optimizer == "adamw":
        return recipe.make_optimizer(model, learning_rate, config.weight_decay, config.beta_2,
                                     loss_scaling=policy == "mixed_float16")
    import keras

    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def _callbacks(run: _Run, extra: list):
    """The run's callbacks, in the order they act on a step: the clock, the guard, history, progress, saves."""
    import keras

    from keras_vit.training.guard import NonFiniteGuard
    from keras_vit.training.history import History
    from keras_vit.training.progress import Progress

    config, eval_steps = run.config, _eval_steps(run)
    own = []
    if run.budget is not None:
        from keras_vit.training.budget import Calibration

        own += [run.budget, Calibration(run.budget, config.calibration_steps, run.saver.save,
                                        lambda batches: run.trainer.evaluate(run.datasets[1], steps=batches),
                                        eval_steps if run.datasets[1] is not None else 0)]
    own += [NonFiniteGuard(config.on_nan, divergence_fixes(config, run.policy), run.saver.kept),
            History(config.output_dir, run.chief, run.start_step // run.steps_per_epoch, config.log_every),
            Progress(run.chief, config.progress, config.log_every, run.total_steps), run.saver]
    epochs = config.epochs if run.budget is None else 2**31  # a budgeted run ends by its clock
    return keras.callbacks.CallbackList(own + extra, model=run.model, epochs=epochs, steps=run.steps_per_epoch,
                                        step=run.step, optimizer=run.optimizer, eval_every=config.eval_every)


def _eval_steps(run: _Run) -> int:
    return -(-run.eval_source.num_examples // run.config.batch_size) if run.eval_source else 0


def _fit(run: _Run, extra: list) -> dict:
    """The epoch loop, ``model.fit``'s shape: each step and epoch end goes through the callbacks."""
    callbacks = _callbacks(run, extra)
    config, spe, iterator = run.config, run.steps_per_epoch, iter(run.datasets[0])
    state = {"losses": [], "metrics": {}, "eval": {}, "images_per_s": 0.0, "skipped": 0}
    run.model.stop_training, row = False, {}
    callbacks.on_train_begin()
    for epoch in range(run.start_step // spe, callbacks.params["epochs"]):
        callbacks.on_epoch_begin(epoch)
        sums, count, t0 = {"loss": 0.0, "accuracy": 0.0}, 0, time.time()
        for batch in range(max(run.start_step - epoch * spe, 0), spe):
            callbacks.on_train_batch_begin(batch)
            logs = {k: float(v) for k, v in run.trainer.train_step(iterator, stop=run.signals.requested is not None)
                    .items()}
            run.step.assign_add(1)
            state["losses"].append(logs["loss"])
            state["skipped"] += int(logs["skipped"])
            if not logs["skipped"]:  # not applied: the weights are still those of the step before
                count, sums = count + 1, {k: sums[k] + logs[k] for k in sums}
            logs.update(learning_rate=_rate(run), mean_loss=sums["loss"] / max(count, 1),
                        mean_accuracy=sums["accuracy"] / max(count, 1))
            callbacks.on_train_batch_end(batch, logs)
            if run.model.stop_training:
                break
        elapsed = time.time() - t0
        state["images_per_s"] = count * config.batch_size / max(elapsed, 1e-9)
        state["metrics"] = {k: v / max(count, 1) for k, v in sums.items()}
        last = epoch + 1 == callbacks.params["epochs"] or run.model.stop_training
        if run.datasets[1] is not None and ((epoch + 1) % config.eval_every == 0 or last):
            state["eval"] = run.trainer.evaluate(run.datasets[1], steps=_eval_steps(run))
        row = {"step": int(run.step.numpy()), "train_loss": state["metrics"]["loss"],
               "train_accuracy": state["metrics"]["accuracy"], "learning_rate": _rate(run),
               "images_per_s": state["images_per_s"], "epoch_seconds": elapsed}
        if state["eval"]:
            row.update(eval_loss=state["eval"]["loss"], eval_accuracy=state["eval"]["accuracy"])
        callbacks.on_epoch_end(epoch, row)
        if run.model.stop_training:
            break
    callbacks.on_train_end(row)
    return state


def _rate(run: _Run) -> float:
    """The learning rate of the step just taken."""
    if run.budget is not None:
        return float(run.budget.learning_rate)
    return float(run.schedule(int(run.step.numpy()) - 1))


def _finish(run: _Run, state: dict) -> dict:
    """The summary; the chief saves ``model.keras`` and ``summary.json``."""
    config, steps = run.config, int(run.step.numpy())
    planned = run.budget.notes.get("total_steps") if run.budget else run.total_steps
    summary = {
        "model": config.model, "data": config.data, "steps": steps, "planned_steps": planned,
        "resumed_from_step": run.start_step if run.resumed else None,
        "final_train_loss": state["metrics"].get("loss"), "final_train_accuracy": state["metrics"].get("accuracy"),
        "eval_loss": state["eval"].get("loss"), "eval_accuracy": state["eval"].get("accuracy"),
        "eval_examples": state["eval"].get("examples"),
        "best_eval_accuracy": float(run.best.numpy()), "images_per_s_last_epoch": state["images_per_s"],
        "skipped_files": len(getattr(run.train_source, "skipped", [])),
        "skipped_steps": state["skipped"], "strategy": type(run.strategy).__name__,
        "replicas": run.strategy.num_replicas_in_sync, "precision": run.policy,
        "seconds": time.time() - run.started, "step_losses": state["losses"], "weights_sha256": _digest(run.model)}
    if run.budget:
        summary["time_budget"] = run.budget.summary(steps)
    if run.report is not None:
        summary.update(weights=config.weights, source=run.report.source, load_report=run.report.summary())
    if run.chief:
        run.saver.save_model(os.path.join(config.output_dir, "model.keras"), steps)
        path = os.path.join(config.output_dir, "summary.json")
        with writing(path):
            atomic_write(path, json.dumps(summary, indent=2))
    return summary
