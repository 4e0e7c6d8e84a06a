"""One pre-LayerNorm transformer encoder block (ViT paper, Eq. 2-3)."""

import keras

from keras_vit.layers.attention import MultiHeadSelfAttention
from keras_vit.layers.drop_path import DropPath
from keras_vit.layers.mlp import Mlp
from keras_vit.layers.normalization import LayerNorm
from keras_vit.registration import register


@register
class TransformerBlock(keras.layers.Layer):
    """``x + MSA(LN(x))`` then ``x + MLP(LN(x))``, with dropout and drop path.

    Args:
        num_heads: attention heads; must divide the token width D.
        mlp_dim: inner width of the MLP (4 * D in the paper).
        dropout_rate: dropout on the attention output and in the MLP.
        attention_dropout_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth rate for both residual branches.
        layer_norm_epsilon: 1e-6, as in the original implementation.

    Returns:
        ``(batch, tokens, D)``; with ``return_attention_scores=True`` also the
        attention weights ``(batch, num_heads, tokens, tokens)``.

    Example:
        >>> import numpy as np
        >>> block = TransformerBlock(num_heads=3, mlp_dim=768)
        >>> tuple(block(np.zeros((2, 197, 192), "float32")).shape)
        (2, 197, 192)
    """

    def __init__(
        self,
        num_heads: int,
        mlp_dim: int,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout_rate = float(dropout_rate)
        self.attention_dropout_rate = float(attention_dropout_rate)
        self.drop_path_rate = float(drop_path_rate)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        policy = self.dtype_policy
        self.norm1 = LayerNorm(layer_norm_epsilon, dtype=policy, name="norm1")
        self.attention = MultiHeadSelfAttention(num_heads, attention_dropout_rate, dtype=policy, name="attention")
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=policy)
        self.norm2 = LayerNorm(layer_norm_epsilon, dtype=policy, name="norm2")
        self.mlp = Mlp(mlp_dim, dropout_rate, dtype=policy, name="mlp")
        self.drop_path = DropPath(drop_path_rate, dtype=policy)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"TransformerBlock expects tokens (batch, tokens, hidden_dim); received shape {tuple(input_shape)}."
            )
        # Every sublayer, the weightless ones too: model.quantize refuses a model with an unbuilt layer.
        for layer in (self.norm1, self.attention, self.dropout, self.norm2, self.mlp, self.drop_path):
            layer.build(input_shape)

    def call(self, tokens, training=False, return_attention_scores=False):
        attended = self.attention(self.norm1(tokens), training=training, return_attention_scores=return_attention_scores)
        if return_attention_scores:
            attended, weights = attended
        tokens = tokens + self.drop_path(self.dropout(attended, training=training), training=training)
        tokens = tokens + self.drop_path(self.mlp(self.norm2(tokens), training=training), training=training)
        return (tokens, weights) if return_attention_scores else tokens

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "drop_path_rate": self.drop_path_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
