"""Multi-head self-attention (Vaswani et al., 2017) with one fused qkv projection."""

import functools

import keras
from keras import ops

from keras_vit.backend import accelerator
from keras_vit.layers.formulation import current_formulation
from keras_vit.registration import register


def _matmul_transposed(a, b):
    """``a @ swapaxes(b, -1, -2)``; on TensorFlow as ``matmul(transpose_b=True)``, not a TRANSPOSE op.

    The TFLite converter then writes each head of ``q k^T`` as one FULLY_CONNECTED with ``k`` as
    its weights when it unfolds BATCH_MATMUL (int8 modes); a TRANSPOSE op would stay, one per head.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only on the TensorFlow backend: JAX and PyTorch runs never load it

        return tf.linalg.matmul(a, b, transpose_b=True)
    return ops.matmul(a, ops.swapaxes(b, -1, -2))


def _scores(query, key):
    """``query key^T`` of one head ``(N, d)``; with ``attention="broadcast"`` as MUL + MEAN over ``d``, times ``d``."""
    if current_formulation().attention != "broadcast":
        return _matmul_transposed(query, key)
    depth = query.shape[-1]
    return ops.mean(query[:, None, :] * key[None, :, :], axis=-1) * ops.cast(depth, query.dtype)


def _apply(weights, value):
    """``weights value`` of one head; with ``attention="broadcast"`` as MUL + MEAN over the keys, times ``N``."""
    if current_formulation().attention != "broadcast":
        return ops.matmul(weights, value)
    return ops.mean(weights[:, :, None] * value[None, :, :], axis=1) * ops.cast(value.shape[0], value.dtype)


@functools.cache
def _fused_by_default() -> bool:
    """``attention="auto"``: the fused kernel on GPUs and TPUs through JAX or PyTorch, where flash kernels exist.

    On CPUs the explicit form trained faster on all three backends (benchmarks/RESULTS.md, "Fused
    attention on the CPU"); TensorFlow's ``dot_product_attention`` is the same two products, no kernel.
    """
    return keras.backend.backend() in ("jax", "torch") and accelerator()[0] != "cpu"


@register
class MultiHeadSelfAttention(keras.layers.Layer):
    """Self-attention over tokens: ``softmax(q k^T / sqrt(d_h)) v``, then a projection.

    Queries, keys and values come from one ``Dense(3 * D)`` named ``qkv``
    (timm's layout; one matrix multiply instead of three), the output from a
    ``Dense(D)`` named ``proj``. The softmax is computed in float32 under mixed
    precision.

    The formulation's ``attention`` picks how the products are traced:
    ``"batch_matmul"`` (q / k / v cut from the 3-D ``qkv`` tensor, all heads in one
    batched matmul) or ``"per_head"`` (batch 1 only: each head's ``q k^T`` and
    ``softmax v`` as 2-D matmuls; the TFLite converter writes ``q k^T`` as a
    ``FULLY_CONNECTED`` with ``k`` as its weights and ``softmax v`` as a 2-D
    ``BATCH_MATMUL``: no tensor above 3-D, for the Edge TPU compiler),
    ``"broadcast"`` (per head, each product as a broadcasting multiply and a mean: no
    activation as weights, for the Edge TPU compiler), ``"fused"``
    (``keras.ops.dot_product_attention``: cuDNN flash attention on GPUs through JAX or
    PyTorch, XLA's on TPUs) or ``"auto"`` (training: fused on GPUs and TPUs, batch_matmul
    on CPUs). The fused form is taken only when no attention weights are returned and no
    attention dropout is active; otherwise the layer computes the explicit form.

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
        qkv = self.qkv(tokens)
        form = current_formulation().attention
        if form in ("per_head", "broadcast"):
            attended, weights = self._per_head(qkv, training, return_attention_scores)
        elif (form == "fused" or form == "auto" and _fused_by_default()) and not return_attention_scores \
                and not (training and self.dropout_rate):
            attended, weights = self._fused(qkv), None
        else:
            attended, weights = self._batched(qkv, training)
        outputs = self.proj(attended)
        return (outputs, weights) if return_attention_scores else outputs

    def _softmax(self, scores, dtype):
        return ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), dtype)

    def _batched(self, qkv, training):
        num_tokens, dim = qkv.shape[1], qkv.shape[2] // 3

        def heads(x):  # (B, N, D) -> (B, heads, N, head_dim)
            return ops.transpose(ops.reshape(x, (-1, num_tokens, self.num_heads, self.head_dim)), (0, 2, 1, 3))

        # Slices of the 3-D qkv tensor: a 5-D reshape-and-index form is the same function but leaves
        # STRIDED_SLICEs that XNNPACK does not take (benchmarks/RESULTS.md).
        query = heads(qkv[..., :dim]) * ops.cast(self.head_dim**-0.5, qkv.dtype)
        key = heads(qkv[..., dim : 2 * dim])
        value = heads(qkv[..., 2 * dim :])
        weights = self._softmax(_matmul_transposed(query, key), value.dtype)
        attended = ops.matmul(self.dropout(weights, training=training), value)
        return ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (-1, num_tokens, dim)), weights

    def _fused(self, qkv):
        """``keras.ops.dot_product_attention`` on ``(B, N, heads, head_dim)``: no transposes, no weights kept.

        JAX picks cuDNN flash attention on GPUs that have it (float16 / bfloat16) and XLA's own form
        elsewhere; PyTorch its scaled_dot_product_attention kernels. Both compute the logits and the
        softmax in float32 under mixed precision, as :meth:`_softmax` does.
        """
        num_tokens, dim = qkv.shape[1], qkv.shape[2] // 3

        def heads(x):  # (B, N, D) -> (B, N, heads, head_dim)
            return ops.reshape(x, (-1, num_tokens, self.num_heads, self.head_dim))

        attended = ops.dot_product_attention(
            heads(qkv[..., :dim]), heads(qkv[..., dim : 2 * dim]), heads(qkv[..., 2 * dim :]),
            scale=self.head_dim**-0.5,
        )
        return ops.reshape(attended, (-1, num_tokens, dim))

    def _per_head(self, qkv, training, return_attention_scores):
        batch, num_tokens, dim = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        if batch != 1:
            raise ValueError(
                f"attention='per_head' traces one image (batch 1, as an edge export does); received "
                f"qkv of shape {tuple(qkv.shape)}. Call the model on x[i:i + 1] or use attention='batch_matmul'."
            )
        qkv = ops.reshape(qkv, (num_tokens, 3 * dim))
        scale = ops.cast(self.head_dim**-0.5, qkv.dtype)
        outputs, all_weights = [], []
        for h in range(self.num_heads):
            start = h * self.head_dim
            query = qkv[:, start : start + self.head_dim] * scale
            key = qkv[:, dim + start : dim + start + self.head_dim]
            value = qkv[:, 2 * dim + start : 2 * dim + start + self.head_dim]
            weights = self._softmax(_scores(query, key), value.dtype)  # (N, N)
            outputs.append(_apply(self.dropout(weights, training=training), value))  # (N, head_dim)
            all_weights.append(weights)
        attended = ops.reshape(ops.concatenate(outputs, axis=-1), (1, num_tokens, dim))
        return attended, ops.stack(all_weights)[None] if return_attention_scores else None

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout_rate": self.dropout_rate}
