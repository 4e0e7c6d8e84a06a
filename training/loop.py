"""The distributed training and evaluation steps: ``strategy.run`` + all-reduce + ``optimizer.apply``.

Keras 3 ``model.fit`` fails under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), so training runs this step of our own on every
strategy. Each replica computes the gradient of its share of the global-batch
mean loss; the replicas sum them (``all_reduce``), clip the *global* gradient
norm, and apply the same update, so every replica and worker keeps identical
weights and the result matches one process on the same global batch.

Keras' TensorFlow optimizer sums gradients across replicas itself inside
``apply``; we hand it ``g / num_replicas`` of the already-reduced ``g`` so its
sum restores ``g`` exactly (clipping must see the reduced gradient, which the
optimizer's own ``global_clipnorm`` would not).

Faults are decided inside the step, at no extra host sync: a step whose loss or
global gradient norm is not finite is not applied (``skipped`` = 1; with fp16
loss scaling the loss-scale optimizer skips such gradients itself), and the
host's stop request (a signal) rides in the gradient all-reduce, so every
worker sees the same ``stop`` after the same step. The values the host reads
come back in one all-reduce instead of three.
"""

import itertools

import tensorflow as tf

from keras_vit.training.recipe import per_example_loss


class Trainer:
    """Runs distributed train and eval steps for a model built under ``strategy.scope()``.

    Args:
        model: the Keras model (variables created under ``strategy.scope()``).
        optimizer: a built optimizer (``recipe.make_optimizer``), same scope.
        strategy: the ``tf.distribute.Strategy``.
        global_batch_size: examples per step over all replicas (the loss divisor).
        label_smoothing: epsilon of label smoothing.
        clip_norm: clip the global gradient norm to this (0 disables).
        jit_compile: compile the per-replica step with XLA.

    Example:
        >>> trainer = Trainer(model, optimizer, strategy, global_batch_size=128)  # doctest: +SKIP
        >>> metrics = trainer.train_step(iterator)   # {"loss": ..., "accuracy": ..., "grad_norm": ...}  # doctest: +SKIP
    """

    def __init__(self, model, optimizer, strategy, *, global_batch_size: int, label_smoothing: float = 0.0,
                 clip_norm: float = 1.0, jit_compile: bool = True):
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.global_batch_size = int(global_batch_size)
        self.label_smoothing = float(label_smoothing)
        self.clip_norm = float(clip_norm)
        self.jit_compile = bool(jit_compile)
        self.loss_scaling = hasattr(optimizer, "scale_loss") and hasattr(optimizer, "dynamic_scale")
        self.replicas = strategy.num_replicas_in_sync
        # One replica: compile the whole step (forward, backward, update) into one XLA cluster.
        # Several: compile forward/backward; the all-reduce and update run as collectives, in the outer
        # function itself (a nested tf.function may not hold the optimizer's merge_call under a cond).
        self._grads_fn = tf.function(self._gradients, jit_compile=self.jit_compile and self.replicas > 1)
        self._replica_step = tf.function(self._replica_update, jit_compile=self.jit_compile) if self.replicas == 1 \
            else self._replica_update
        self._train = tf.function(self._distributed_train)
        self._eval = tf.function(self._distributed_eval)

    # ------------------------------------------------------------------ training
    def _gradients(self, images, labels):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            losses = per_example_loss(labels, logits, self.label_smoothing)
            loss = tf.reduce_sum(losses) / self.global_batch_size
            scaled = self.optimizer.scale_loss(loss) if self.loss_scaling else loss
        grads = tape.gradient(scaled, variables)
        correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(logits, -1), tf.argmax(labels, -1)), tf.float32))
        return grads, tf.reduce_sum(losses), correct

    def _replica_update(self, images, labels, stop):
        variables = self.model.trainable_variables
        grads, loss_sum, correct = self._grads_fn(images, labels) if self.replicas > 1 \
            else self._gradients(images, labels)
        bad_loss = tf.cast(tf.logical_not(tf.math.is_finite(loss_sum)), tf.float32)
        if self.replicas > 1:  # the two flags share the gradients' collective (identity: a copy on this replica)
            *grads, bad_loss, stop = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, [*grads, bad_loss, tf.identity(stop)])
        norm = tf.linalg.global_norm(grads)
        if self.loss_scaling:
            norm = norm / tf.cast(self.optimizer.dynamic_scale, norm.dtype)
            finite = tf.equal(bad_loss, 0.0)  # the loss-scale optimizer skips non-finite gradients itself
        else:
            finite = tf.logical_and(tf.equal(bad_loss, 0.0), tf.math.is_finite(norm))
        if self.clip_norm > 0:
            factor = tf.minimum(1.0, self.clip_norm / tf.maximum(norm, 1e-12))
            grads = [g * tf.cast(factor, g.dtype) for g in grads]
        if self.replicas > 1:
            grads = [g / self.replicas for g in grads]
        self._apply_if(finite, grads, variables)
        shared = tf.stack([tf.cast(norm, tf.float32), 1.0 - tf.cast(finite, tf.float32), tf.minimum(stop, 1.0)])
        return tf.stack([tf.cast(loss_sum, tf.float32), correct]), shared

    def _apply_if(self, finite, grads, variables):
        """``optimizer.apply`` only when ``finite`` (equal on every replica: it follows the reduced gradient)."""
        if self.loss_scaling:
            self.optimizer.apply(grads, variables)
            return
        if tf.__internal__.distribute.strategy_supports_no_merge_call():
            tf.cond(finite, lambda: self.optimizer.apply(grads, variables), lambda: None)
            return

        # The optimizer calls merge_call, which a cond branch in a replica context may not (Keras'
        # LossScaleOptimizer takes the same way round): decide in the cross-replica context.
        def cross_replica(strategy, finite, grads):
            finite = strategy.experimental_local_results(finite)[0]
            tf.cond(finite, lambda: strategy.extended.call_for_each_replica(
                self.optimizer.apply, args=(grads, variables)), lambda: None)

        tf.distribute.get_replica_context().merge_call(cross_replica, args=(finite, grads))

    def _distributed_train(self, iterator, stop):
        images, labels = next(iterator)
        sums, shared = self.strategy.run(self._replica_step, args=(images, labels, stop))
        sums = self.strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)
        shared = self.strategy.experimental_local_results(shared)[0]  # equal on every replica
        return {"loss": sums[0] / self.global_batch_size, "accuracy": sums[1] / self.global_batch_size,
                "grad_norm": shared[0], "skipped": shared[1], "stop": shared[2]}

    def train_step(self, iterator, stop: bool = False) -> dict:
        """One optimizer step on the next global batch of a distributed iterator.

        Args:
            stop: this worker wants the run to stop (a signal arrived); all workers learn it together.

        Returns:
            ``{"loss", "accuracy", "grad_norm", "skipped", "stop"}`` as scalar tensors: global-batch
            means, the norm before clipping, ``skipped`` 1.0 when the loss or the norm was not finite
            and the update was not applied, ``stop`` 1.0 when any worker asked to stop.
        """
        return self._train(iterator, tf.constant(1.0 if stop else 0.0))

    def weights_finite(self) -> bool:
        """True when every weight of the model is finite (checked before anything is saved)."""
        return bool(self._finite())

    @tf.function
    def _finite(self):
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(w)) for w in self.model.weights
                              if "float" in str(w.dtype)])

    # ------------------------------------------------------------------ evaluation
    def _replica_eval(self, images, labels, weights):
        logits = tf.cast(self.model(images, training=False), tf.float32)
        one_hot = tf.one_hot(labels, tf.shape(logits)[-1])
        losses = per_example_loss(one_hot, logits) * weights
        correct = tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32) * weights
        return tf.reduce_sum(losses), tf.reduce_sum(correct), tf.reduce_sum(weights)

    def _distributed_eval(self, batch):
        sums = self.strategy.run(self._replica_eval, args=batch)
        return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    def evaluate(self, distributed_dataset, progress=None, steps=None) -> dict:
        """Loss and top-1 accuracy over a distributed ``eval_dataset`` (padding has weight 0).

        Args:
            steps: the number of global batches when known; reading exactly that many avoids
                waiting for the distributed iterator to notice the end of the data (seconds).

        Returns:
            ``{"loss", "accuracy", "examples"}`` as Python floats.
        """
        total = [0.0, 0.0, 0.0]
        iterator = iter(distributed_dataset)
        for _ in itertools.count() if steps is None else range(steps):
            batch = next(iterator, None)
            if batch is None:  # files dropped at decode made the data shorter
                break
            sums = self._eval(batch)
            total = [t + float(s) for t, s in zip(total, sums)]
            if progress is not None:
                progress.update(1)
        count = max(total[2], 1.0)
        return {"loss": total[0] / count, "accuracy": total[1] / count, "examples": int(total[2])}
