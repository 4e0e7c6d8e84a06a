"""Multi-head self-attention (Vaswani et al., 2017) with one fused qkv projection."""

import keras
from keras import ops

from keras_vit.serialization import register


@register
class MultiHeadSelfAttention(keras.layers.Layer):
    """Self-attention over tokens: ``softmax(q k^T / sqrt(d_h)) v``, then a projection.

    Queries, keys and values come from one ``Dense(3 * D)`` named ``qkv``
    (timm's layout; one matrix multiply instead of three), the output from a
    ``Dense(D)`` named ``proj``. The softmax is computed in float32 under mixed
    precision.

    Args:
        num_heads: number of attention heads; must divide the token width D.
        dropout_rate: dropout on the attention weights while training.

    Returns:
        ``(batch, tokens, D)``, and with ``return_attention_scores=True`` also the
        attention weights ``(batch, num_heads, tokens, tokens)``.

    Example:
        >>> import numpy as np
        >>> tuple(MultiHeadSelfAttention(num_heads=3)(np.zeros((2, 17, 192), "float32")).shape)
        (2, 17, 192)
    """

    def __init__(self, num_heads: int, dropout_rate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive integer; received num_heads={num_heads!r}.")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1); received dropout_rate={dropout_rate}.")
        self.num_heads = num_heads
        self.dropout_rate = float(dropout_rate)
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None or dim % self.num_heads:
            raise ValueError(
                f"hidden_dim={dim} is not divisible by num_heads={self.num_heads}. "
                f"Choose num_heads among the divisors of {dim} or change hidden_dim."
            )
        self.head_dim = dim // self.num_heads
        self.qkv = keras.layers.Dense(3 * dim, dtype=self.dtype_policy, name="qkv")
        self.qkv.build(input_shape)
        self.proj = keras.layers.Dense(dim, dtype=self.dtype_policy, name="proj")
        self.proj.build(input_shape)

    def call(self, tokens, training=False, return_attention_scores=False):
        num_tokens, dim = tokens.shape[1], tokens.shape[2]
        qkv = self.qkv(tokens)

        def heads(x):  # (B, N, D) -> (B, heads, N, head_dim)
            return ops.transpose(ops.reshape(x, (-1, num_tokens, self.num_heads, self.head_dim)), (0, 2, 1, 3))

        # q, k, v are cut from the 3-D qkv tensor on its last axis: a 5-D reshape-and-index form is the
        # same function but leaves STRIDED_SLICEs that XNNPACK will not take (14 partitions instead of 1).
        query = heads(qkv[..., :dim]) * ops.cast(self.head_dim**-0.5, qkv.dtype)
        key = heads(qkv[..., dim : 2 * dim])
        value = heads(qkv[..., 2 * dim :])
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), value.dtype)
        attended = ops.matmul(self.dropout(weights, training=training), value)
        attended = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (-1, num_tokens, dim))
        outputs = self.proj(attended)
        return (outputs, weights) if return_attention_scores else outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout_rate": self.dropout_rate}
