"""The training recipe: AdamW without decay on biases/norms/embeddings, warmup-cosine, smoothing, precision.

Follows the ViT / DeiT recipe (Dosovitskiy et al. 2021, Touvron et al. 2021):
AdamW, linear warmup then cosine decay, label smoothing, gradient-norm
clipping at 1.0, stochastic depth and dropout in the model.
"""

import math

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "mixed")
LR_SCALINGS = ("linear", "sqrt", "none")
NO_DECAY_NAMES = ("bias", "gamma", "beta", "class_token", "position_embeddings")


def scaled_learning_rate(base_lr: float, global_batch_size: int, base_batch_size: int = 512,
                         scaling: str = "linear") -> float:
    """``base_lr`` scaled to the global batch: ``lr * B / B0`` (linear) or ``lr * sqrt(B / B0)``.

    Example:
        >>> scaled_learning_rate(1e-3, 128, 512)
        0.00025
    """
    if scaling not in LR_SCALINGS:
        raise ValueError(f"lr_scaling must be one of {LR_SCALINGS}; received lr_scaling={scaling!r}.")
    ratio = global_batch_size / base_batch_size
    return base_lr * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[scaling]


def warmup_cosine(peak: float, warmup_steps: int, total_steps: int, end: float = 0.0):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``end`` at ``total_steps``.

    Keras' own ``CosineDecay`` computes exactly this; this function only translates the recipe's
    terms (total steps, an absolute floor) into its arguments (steps after warmup, the floor as a
    fraction ``alpha`` of the peak), so it serializes inside a saved optimizer with no custom class.

    Args:
        peak: the learning rate at the end of warmup.
        warmup_steps: steps of linear warmup (0 starts at ``peak``).
        total_steps: the step at which the floor is reached (held after it).
        end: the floor (``TrainConfig.min_learning_rate``).

    Returns:
        A ``keras.optimizers.schedules.CosineDecay``.

    Example:
        >>> s = warmup_cosine(1e-3, warmup_steps=10, total_steps=110)
        >>> [round(float(s(t)), 6) for t in (0, 10, 60, 110)]
        [0.0, 0.001, 0.0005, 0.0]
    """
    warmup_steps = int(warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(int(total_steps) - warmup_steps, 1), alpha=float(end) / peak if peak else 0.0,
        warmup_target=float(peak), warmup_steps=warmup_steps,
    )


def no_decay_variables(model) -> list:
    """Biases, LayerNorm gamma/beta, the class token and position embeddings (and any 1-D weight)."""
    return [v for v in model.trainable_variables
            if v.name.split("/")[-1].split(":")[0] in NO_DECAY_NAMES or len(v.shape) <= 1]


def make_optimizer(model, learning_rate, weight_decay: float = 0.05, beta_2: float = 0.999,
                   loss_scaling: bool = False, clip_norm=None):
    """AdamW whose decay skips :func:`no_decay_variables`; built on ``model`` (call under the strategy scope).

    Args:
        model: the model whose trainable variables it updates.
        learning_rate: a float or a schedule (e.g. :func:`warmup_cosine`).
        weight_decay: decoupled weight decay (Loshchilov & Hutter, 2019).
        loss_scaling: wrap in ``keras.optimizers.LossScaleOptimizer`` (float16).
        clip_norm: clip the global gradient norm (``model.fit``; the distributed loop clips itself).

    Returns:
        A built ``keras.optimizers.Optimizer``.
    """
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, beta_2=beta_2,
                                       global_clipnorm=clip_norm or None)
    optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def recipe_for(model, learning_rate: float = 1e-3, total_steps=None, warmup_steps: int = 0,
               weight_decay: float = 0.05, label_smoothing: float = 0.0, clip_norm: float = 1.0) -> dict:
    """The training recipe as ``model.compile`` arguments: ``model.compile(**recipe_for(model, ...))``.

    AdamW without decay on :func:`no_decay_variables` (biases, norms, the class token, position
    embeddings), the global gradient norm clipped, softmax cross-entropy on logits with label
    smoothing (one-hot labels; integer labels when ``label_smoothing`` is 0), and top-1 accuracy.

    Args:
        model: the model to train.
        learning_rate: the peak rate.
        total_steps: with a number, the rate follows :func:`warmup_cosine` to 0 at that step; None keeps
            it a number that a :class:`~keras_vit.training.budget.TimeBudget` sets before every step.
        warmup_steps: linear warmup (with ``total_steps``).
        weight_decay, label_smoothing, clip_norm: as in ``keras-vit train``.

    Returns:
        ``{"optimizer", "loss", "metrics"}``.

    Example:
        >>> import keras_vit
        >>> model = keras_vit.create_model("vit_test", num_classes=10)
        >>> model.compile(**recipe_for(model, learning_rate=1e-3, total_steps=1000, warmup_steps=100))
        >>> type(model.optimizer).__name__, model.loss.name
        ('AdamW', 'sparse_categorical_crossentropy')
    """
    rate = learning_rate if total_steps is None else warmup_cosine(learning_rate, warmup_steps, total_steps)
    optimizer = make_optimizer(model, rate, weight_decay, clip_norm=clip_norm)
    if label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    return {"optimizer": optimizer, "loss": loss, "metrics": [accuracy]}


def resolve_precision(precision: str, strategy) -> str:
    """The Keras dtype policy name: ``mixed`` is :func:`keras_vit.backend.mixed_policy` (bf16, fp16 on pre-Ampere GPUs)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; received precision={precision!r}.")
    if precision != "mixed":
        return precision
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    from keras_vit.backend import mixed_policy

    return mixed_policy()


def per_example_loss(labels, logits, label_smoothing: float = 0.0):
    """Softmax cross-entropy per example, float32, from one-hot (or mixed) labels and logits."""
    logits = keras.ops.cast(logits, "float32")
    labels = keras.ops.cast(labels, "float32")
    if label_smoothing:
        classes = keras.ops.cast(keras.ops.shape(labels)[-1], "float32")
        labels = labels * (1.0 - label_smoothing) + label_smoothing / classes
    return -keras.ops.sum(labels * keras.ops.log_softmax(logits, axis=-1), axis=-1)
