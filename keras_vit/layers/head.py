"""The classification head: final LayerNorm, pooling, Linear (or Linear-GELU-Linear)."""

import keras
from keras import ops

from keras_vit.layers.activation import gelu
from keras_vit.layers.normalization import LayerNorm
from keras_vit.registration import register

POOLINGS = ("token", "gap")


@register
class ClassificationHead(keras.layers.Layer):
    """Maps encoder tokens to class logits.

    LayerNorm on all tokens, then the [class] token (``pooling="token"``, the
    paper's default) or the mean of the patch tokens (``"gap"``), then
    ``Dense(num_classes)``; with ``representation_size`` a
    ``Dense(representation_size) -> activation`` comes first (the pre-logits layer;
    GELU, or tanh as in the original ViT and timm checkpoints).

    Args:
        num_classes: number of output logits; 0 returns the pooled features.
        pooling: ``"token"`` or ``"gap"``.
        representation_size: hidden size of the optional pre-logits layer.
        representation_activation: ``"gelu"`` or ``"tanh"`` after the pre-logits layer.
        dropout_rate: dropout before the final ``Dense`` while training.
        layer_norm_epsilon: epsilon of the final LayerNorm.

    Example:
        >>> import numpy as np
        >>> tuple(ClassificationHead(10)(np.zeros((2, 17, 64), "float32")).shape)
        (2, 10)
    """

    def __init__(
        self,
        num_classes: int,
        pooling: str = "token",
        representation_size=None,
        dropout_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        representation_activation: str = "gelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if representation_activation not in ("gelu", "tanh"):
            raise ValueError(
                f"representation_activation must be 'gelu' or 'tanh'; "
                f"received representation_activation={representation_activation!r}."
            )
        self.representation_activation = representation_activation
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an integer >= 0; received num_classes={num_classes!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; received pooling={pooling!r}.")
        if representation_size is not None and (not isinstance(representation_size, int) or representation_size < 1):
            raise ValueError(
                f"representation_size must be None or a positive integer; "
                f"received representation_size={representation_size!r}."
            )
        self.num_classes = num_classes
        self.pooling = pooling
        self.representation_size = representation_size
        self.dropout_rate = float(dropout_rate)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        policy = self.dtype_policy
        self.norm = LayerNorm(layer_norm_epsilon, dtype=policy, name="norm")
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=policy)
        self.pre_logits = None
        if representation_size:
            self.pre_logits = keras.layers.Dense(representation_size, dtype=policy, name="pre_logits")
        self.head = None
        if num_classes:
            self.head = keras.layers.Dense(num_classes, dtype=policy, name="head")

    def build(self, input_shape):
        self.norm.build(input_shape)
        features = (input_shape[0], input_shape[-1])
        if self.pre_logits is not None:
            self.pre_logits.build(features)
            features = (input_shape[0], self.representation_size)
        if self.head is not None:
            self.head.build(features)

    def call(self, tokens, training=False):
        return self.classify(self.pool(self.norm(tokens)), training=training)

    def pool(self, tokens):
        """Final-norm tokens ``(batch, tokens, D)`` -> pooled pre-logits features ``(batch, width)``."""
        if self.pooling == "token":  # [:, :1] + reshape: the same as [:, 0], and one XNNPACK partition
            x = ops.reshape(tokens[:, :1], (-1, tokens.shape[-1]))
        else:
            x = ops.mean(tokens[:, 1:], axis=1)
        if self.pre_logits is not None:
            x = self.pre_logits(x)
            x = ops.tanh(x) if self.representation_activation == "tanh" else gelu(x)
        return x

    def classify(self, features, training=False):
        """Pooled features -> logits (identity when ``num_classes=0``)."""
        if self.head is None:
            return features
        return self.head(self.dropout(features, training=training))

    def compute_output_shape(self, input_shape):
        width = self.num_classes or self.representation_size or input_shape[-1]
        return (input_shape[0], width)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "representation_size": self.representation_size,
            "dropout_rate": self.dropout_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "representation_activation": self.representation_activation,
        }
