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


@keras.saving.register_keras_serializable(package="keras_vit")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``end``.

    Example:
        >>> s = WarmupCosine(1e-3, warmup_steps=10, total_steps=110)
        >>> [round(float(s(t)), 6) for t in (0, 10, 60, 110)]
        [0.0, 0.001, 0.0005, 0.0]
    """

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, end: float = 0.0):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), self.warmup_steps + 1)
        self.end = float(end)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        progress = keras.ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)
        cosine = self.end + 0.5 * (self.peak - self.end) * (1.0 + keras.ops.cos(math.pi * progress))
        return keras.ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "end": self.end}


def no_decay_variables(model) -> list:
    """Biases, LayerNorm gamma/beta, the class token and position embeddings (and any 1-D weight)."""
    return [v for v in model.trainable_variables
            if v.name.split("/")[-1].split(":")[0] in NO_DECAY_NAMES or len(v.shape) <= 1]


def make_optimizer(model, learning_rate, weight_decay: float = 0.05, beta_2: float = 0.999,
                   loss_scaling: bool = False):
    """AdamW whose decay skips :func:`no_decay_variables`; built on ``model`` (call under the strategy scope).

    Args:
        model: the model whose trainable variables it updates.
        learning_rate: a float or a schedule (e.g. :class:`WarmupCosine`).
        weight_decay: decoupled weight decay (Loshchilov & Hutter, 2019).
        loss_scaling: wrap in ``keras.optimizers.LossScaleOptimizer`` (float16).

    Returns:
        A built ``keras.optimizers.Optimizer``.
    """
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, beta_2=beta_2)
    optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def resolve_precision(precision: str, strategy) -> str:
    """The Keras dtype policy name: ``mixed`` means bf16 on CPU/TPU, fp16 (loss-scaled) on GPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; received precision={precision!r}.")
    if precision != "mixed":
        return precision
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def per_example_loss(labels, logits, label_smoothing: float = 0.0):
    """Softmax cross-entropy per example, float32, from one-hot (or mixed) labels and logits."""
    logits = keras.ops.cast(logits, "float32")
    labels = keras.ops.cast(labels, "float32")
    if label_smoothing:
        classes = keras.ops.cast(keras.ops.shape(labels)[-1], "float32")
        labels = labels * (1.0 - label_smoothing) + label_smoothing / classes
    return -keras.ops.sum(labels * keras.ops.log_softmax(logits, axis=-1), axis=-1)
