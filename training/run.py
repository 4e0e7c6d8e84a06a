"""``train(config)``: data, strategy, model, recipe, the loop, checkpoints and resume, in one place.

Example:
    >>> from keras_vit.training.config import TrainConfig, smoke
    >>> summary = train(smoke(TrainConfig(model="vit_test", data="cifar10", output_dir="/tmp/r")))  # doctest: +SKIP
    >>> summary["steps"]  # doctest: +SKIP
    8
"""

import json
import logging
import os
import time

from keras_vit.atomic import atomic_path, atomic_write
from keras_vit.training.config import TrainConfig
from keras_vit.training.faults import (Diverged, Preempted, StopSignals, WorkerLost, WriteFailed, divergence_fixes,
                                       lost_peer, writing)

log = logging.getLogger("keras_vit.training")


def _sources(config, contract_classes=None):
    from keras_vit.training import sources

    train_source = sources.load_source(config.data, "train", config.data_dir)
    train_source = sources.subset(train_source, config.max_train_examples, config.seed)
    eval_source = None
    if config.eval_data != "none":
        eval_source = sources.load_source(config.eval_data or config.data, "test", config.data_dir,
                                          class_names=getattr(train_source, "class_names", None))
        eval_source = sources.subset(eval_source, config.max_eval_examples, config.seed)
    return train_source, eval_source


def _datasets(config, strategy, train_source, eval_source, contract, num_classes, steps_per_epoch, start_step):
    from keras_vit.training import data

    augment = config.augment
    batch = config.batch_size

    def train_fn(ctx):
        return data.train_dataset(
            train_source, contract, num_classes, batch_size=ctx.get_per_replica_batch_size(batch),
            steps_per_epoch=steps_per_epoch, seed=config.seed, start_step=start_step, augment=augment,
            num_pipelines=ctx.num_input_pipelines, pipeline_id=ctx.input_pipeline_id,
            replicas_per_pipeline=ctx.num_replicas_in_sync // ctx.num_input_pipelines)

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


def train(config: TrainConfig) -> dict:
    """Trains (or resumes) a run described by ``config``; returns the final summary.

    Writes into ``config.output_dir``: ``checkpoints/`` (periodic, resumable),
    ``best.keras`` (highest eval accuracy), ``model.keras`` (final),
    ``history.csv``, ``tensorboard/``, ``config.json`` and ``summary.json``. The
    saved models carry their input contract and the data's class names. Running
    the same config again resumes from the newest checkpoint and stops at the
    planned number of steps.

    Raises:
        keras_vit.training.faults.Preempted: SIGTERM/SIGINT; a checkpoint of the current step was saved.
        keras_vit.training.faults.WriteFailed: a write failed (full disk ...); earlier files are intact.
        keras_vit.training.faults.Diverged: a non-finite loss or gradient (``on_nan="stop"``).
        keras_vit.training.faults.WorkerLost: a peer of a multi-worker run was lost.
    """
    started = time.time()  # before importing TensorFlow: a --time-budget includes it
    import keras
    import tensorflow as tf

    from keras_vit.factory import create_model
    from keras_vit.training import recipe
    from keras_vit.training.checkpoints import Checkpoints
    from keras_vit.training.history import History
    from keras_vit.training.loop import Trainer
    from keras_vit.training.strategy import get_strategy, is_chief, multi_worker, split_batch, split_cpu

    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    if config.logical_cpus:
        split_cpu(config.logical_cpus)
    strategy = get_strategy(config.strategy, config.tpu)
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
    total_steps = config.epochs * steps_per_epoch
    peak = recipe.scaled_learning_rate(config.learning_rate, config.batch_size, config.base_batch_size,
                                       config.lr_scaling)
    schedule = recipe.warmup_cosine(peak, int(config.warmup_epochs * steps_per_epoch), total_steps,
                                    config.min_learning_rate)
    budget = None
    if config.time_budget:  # the schedule is fitted to the clock after calibration (training/budget.py)
        from keras_vit.training.budget import BudgetedSchedule

        budget = BudgetedSchedule(config.time_budget, started, peak, config.min_learning_rate,
                                  int(config.warmup_epochs * steps_per_epoch), config.calibration_steps)
        schedule = budget.learning_rate
    with strategy.scope():
        model = create_model(config.model, dtype=None if policy == "float32" else policy, **overrides)
        optimizer = recipe.make_optimizer(model, 0.0 if budget else schedule, config.weight_decay, config.beta_2,
                                          loss_scaling=policy == "mixed_float16")
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        best = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_accuracy")
    contract = model.preprocessing

    out = config.output_dir
    checkpoints = Checkpoints(os.path.join(out, "checkpoints"), strategy, config.keep_checkpoints,
                              model=model, optimizer=optimizer, step=step, best=best)
    resumed = checkpoints.restore()
    start_step = int(step.numpy())
    epochs = config.epochs if budget is None else budget.resume(out, start_step)
    if chief:
        with writing(os.path.join(out, "config.json")):
            atomic_write(os.path.join(out, "config.json"), config.to_json())
    history = History(out, enabled=chief, completed_epochs=start_step // steps_per_epoch)
    trainer = Trainer(model, optimizer, strategy, global_batch_size=config.batch_size,
                      label_smoothing=config.label_smoothing, clip_norm=config.clip_norm,
                      jit_compile=config.jit_compile)
    train_ds, eval_ds = _datasets(config, strategy, train_source, eval_source, contract, num_classes,
                                  steps_per_epoch, start_step)
    iterator = iter(train_ds)
    if chief:
        print(f"Training {config.model} ({model.count_params():,} params, {policy}) on "
              f"{train_source.num_examples} images of {config.data!r}, {type(strategy).__name__} x"
              f"{strategy.num_replicas_in_sync} (per-replica batch {per_replica}), {config.epochs} epochs x "
              f"{steps_per_epoch} steps, peak lr {peak:.3g}" + (f"; resumed at step {start_step}" if resumed else ""))

    guard = _Guard(config, policy, trainer, checkpoints, out)
    with StopSignals() as signals:
        try:
            metrics, eval_metrics, images_per_s, losses, skipped = _epochs(
                config, trainer, iterator, eval_ds, eval_source, step, best, schedule, checkpoints, history,
                guard, signals, model, start_step, steps_per_epoch, total_steps, chief, epochs, budget, optimizer)
            summary = {
                "model": config.model, "data": config.data, "steps": int(step.numpy()),
                "planned_steps": getattr(budget.plan, "total_steps", None) if budget else total_steps,
                "resumed_from_step": start_step if resumed else None, "final_train_loss": metrics.get("loss"),
                "final_train_accuracy": metrics.get("accuracy"), "eval_loss": eval_metrics.get("loss"),
                "eval_accuracy": eval_metrics.get("accuracy"), "best_eval_accuracy": float(best.numpy()),
                "images_per_s_last_epoch": images_per_s, "skipped_files": len(getattr(train_source, "skipped", [])),
                "skipped_steps": skipped, "strategy": type(strategy).__name__,
                "replicas": strategy.num_replicas_in_sync, "precision": policy, "seconds": time.time() - started,
                "step_losses": losses, "weights_sha256": _digest(model)}
            if budget:
                summary["time_budget"] = budget.summary(int(step.numpy()))
            if chief:
                guard.save_model(model, os.path.join(out, "model.keras"), int(step.numpy()))
                path = os.path.join(out, "summary.json")
                with writing(path):
                    atomic_write(path, json.dumps(summary, indent=2))
        except WriteFailed as error:
            raise WriteFailed(error.path, error.reason, guard.kept() + "; free space and run the same "
                              "command again to resume.") from error
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                tf.errors.AbortedError) as error:
            if not multi_worker(strategy):
                raise
            raise WorkerLost(f"Lost contact with {lost_peer(error)} after step {int(step.numpy())}; {guard.kept()}. "
                             "Restart every worker with the same command to resume.") from error
    return summary


def _epochs(config, trainer, iterator, eval_ds, eval_source, step, best, schedule, checkpoints, history, guard,
            signals, model, start_step, steps_per_epoch, total_steps, chief, epochs, budget, optimizer):
    """The epoch loop; returns the last epoch's metrics, eval metrics, throughput, step losses, skipped steps."""
    from tqdm import tqdm

    metrics, eval_metrics, images_per_s, losses, skipped = {}, {}, 0.0, [], 0
    in_a_row, stop = 0, False
    eval_steps = -(-eval_source.num_examples // config.batch_size) if eval_source else 0
    for epoch in range(start_step // steps_per_epoch, epochs):
        first = max(start_step - epoch * steps_per_epoch, 0)
        sums, count, t0 = {"loss": 0.0, "accuracy": 0.0}, 0, time.time()
        bar = tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{epochs if budget is None else '~'}",
                   disable=not (chief and config.progress), dynamic_ncols=True, leave=True)
        for _ in range(first, steps_per_epoch):
            if budget:
                budget.before_step(optimizer, int(step.numpy()))
            result = trainer.train_step(iterator, stop=signals.requested is not None)
            step.assign_add(1)
            current = int(step.numpy())
            values = {k: float(v) for k, v in result.items()}
            if budget:
                stop = budget.after_step(current, trainer, eval_ds, checkpoints, steps_per_epoch, eval_steps,
                                         config.eval_every, config.output_dir if chief else None)
            losses.append(values["loss"])
            bar.update(1)
            if values["skipped"]:  # not applied: the weights are still those of the step before
                skipped, in_a_row = skipped + 1, in_a_row + 1
                guard.non_finite(current, values, in_a_row)
            else:
                in_a_row = 0
                for key in sums:
                    sums[key] += values[key]
                count += 1
                bar.set_postfix(loss=f"{sums['loss'] / count:.4f}", acc=f"{sums['accuracy'] / count:.3f}")
            if current % config.log_every == 0:
                history.scalars("train", current, {**values, "learning_rate": schedule(current - 1)})
                if chief and not config.progress:
                    print(f"step {current}/{total_steps}: loss={values['loss']:.4g}, "
                          f"accuracy={values['accuracy']:.3f}", flush=True)
            if values["stop"] and current % steps_per_epoch:  # at an epoch's end, finish the epoch first
                bar.close()
                guard.preempt(current, signals.requested, history, guard.save_checkpoint(current))
            if current % config.checkpoint_every == 0 and current % steps_per_epoch:
                guard.save_checkpoint(current)
            if stop:
                break
        bar.close()
        elapsed = time.time() - t0
        images_per_s = count * config.batch_size / max(elapsed, 1e-9)
        metrics = {k: v / max(count, 1) for k, v in sums.items()}
        last = epoch + 1 == epochs or stop
        if eval_ds is not None and ((epoch + 1) % config.eval_every == 0 or last):
            eval_metrics = trainer.evaluate(eval_ds, steps=-(-eval_source.num_examples // config.batch_size))
        current = int(step.numpy())
        improved = eval_metrics.get("accuracy", -1.0) > float(best.numpy())
        if improved:
            best.assign(eval_metrics["accuracy"])
        row = {"step": current, "train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"],
               "learning_rate": float(schedule(current - 1)), "images_per_s": images_per_s,
               "epoch_seconds": elapsed}
        if eval_metrics:
            row.update(eval_loss=eval_metrics["loss"], eval_accuracy=eval_metrics["accuracy"])
            history.scalars("eval", current, {"loss": eval_metrics["loss"], "accuracy": eval_metrics["accuracy"]})
        history.add_epoch(epoch, row)
        if chief and improved:
            guard.save_model(model, os.path.join(config.output_dir, "best.keras"), current)
        path = guard.save_checkpoint(current)
        if chief:
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
        if values["stop"] and not last:
            guard.preempt(current, signals.requested, history, path)
        if stop:
            break
    return metrics, eval_metrics, images_per_s, losses, skipped


class _Guard:
    """Saves only finite weights and turns a signal or a non-finite step into the exception that ends the run."""

    SKIP_LIMIT = 20  # consecutive skipped steps after which --on-nan skip gives up

    def __init__(self, config, policy, trainer, checkpoints, out):
        self.config, self.policy, self.trainer, self.checkpoints, self.out = config, policy, trainer, checkpoints, out

    def kept(self) -> str:
        latest = self.checkpoints.latest_step()
        text = (f"the last checkpoint, step {latest}, is intact in {self.checkpoints.directory}" if latest is not None
                else "no checkpoint had been written yet")
        if os.path.isfile(os.path.join(self.out, "best.keras")):
            text += ", and so is best.keras"
        return text

    def _finite(self, current: int):
        if not self.trainer.weights_finite():
            raise Diverged(f"Training diverged by step {current}: the weights are no longer finite, though the "
                           f"loss still was. Nothing of it was saved; {self.kept()}. "
                           + divergence_fixes(self.config, self.policy))

    def non_finite(self, current: int, values: dict, in_a_row: int):
        what = f"the loss is {values['loss']:g} and the gradient norm {values['grad_norm']:g}"
        if self.config.on_nan == "stop" or in_a_row >= self.SKIP_LIMIT:
            how = "" if self.config.on_nan == "stop" else f" ({in_a_row} steps in a row skipped)"
            raise Diverged(f"Training diverged at step {current}: {what}{how}. The step was not applied and "
                           f"nothing of it was saved; {self.kept()}. " + divergence_fixes(self.config, self.policy))
        log.warning("Step %d: %s; the update was skipped (--on-nan skip).", current, what)

    def save_checkpoint(self, current: int) -> str:
        self._finite(current)
        return self.checkpoints.save(current)

    def save_model(self, model, path: str, current: int):
        self._finite(current)
        with writing(path), atomic_path(path) as temporary:
            model.save(temporary)

    def preempt(self, current: int, signal_name, history, path: str):
        history.flush()
        cause = f"by {signal_name}" if signal_name else "because another worker was signalled"
        raise Preempted(f"Stopped {cause} at step {current}: saved {path}; run the same command again to "
                        f"resume from step {current}.")
