"""The transformer MLP: Dense(mlp_dim) -> GELU -> Dense(hidden_dim)."""

import keras

from keras_vit.layers.activation import gelu
from keras_vit.registration import register


@register
class Mlp(keras.layers.Layer):
    """Two ``Dense`` layers with GELU between them and dropout after each.

    Args:
        mlp_dim: the inner width (4 * D in every paper variant).
        dropout_rate: dropout after each ``Dense`` while training.

    Example:
        >>> import numpy as np
        >>> tuple(Mlp(mlp_dim=768)(np.zeros((2, 17, 192), "float32")).shape)
        (2, 17, 192)
    """

    def __init__(self, mlp_dim: int, dropout_rate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(mlp_dim, int) or mlp_dim < 1:
            raise ValueError(f"mlp_dim must be a positive integer; received mlp_dim={mlp_dim!r}.")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1); received dropout_rate={dropout_rate}.")
        self.mlp_dim = mlp_dim
        self.dropout_rate = float(dropout_rate)
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.fc1 = keras.layers.Dense(self.mlp_dim, dtype=self.dtype_policy, name="fc1")
        self.fc1.build(input_shape)
        self.fc2 = keras.layers.Dense(input_shape[-1], dtype=self.dtype_policy, name="fc2")
        self.fc2.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, inputs, training=False):
        x = self.dropout(gelu(self.fc1(inputs)), training=training)
        return self.dropout(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mlp_dim": self.mlp_dim, "dropout_rate": self.dropout_rate}
