"""Stochastic depth (Huang et al., 2016): drops a whole residual branch per sample."""

import keras
from keras import ops

from keras_vit.registration import register


@register
class DropPath(keras.layers.Layer):
    """Zeroes the input for a random ``rate`` of samples while training.

    Kept samples are scaled by ``1 / (1 - rate)``; at inference it is identity.

    Args:
        rate: the probability of dropping a sample's branch, in [0, 1).
        seed: optional seed for the random generator.

    Example:
        >>> import numpy as np
        >>> tuple(DropPath(0.1)(np.ones((4, 3, 8), "float32")).shape)
        (4, 3, 8)
    """

    def __init__(self, rate: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1); received rate={rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        # No weights; marks the layer built, which model.quantize asks of every layer.
        super().build(input_shape)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = keras.random.uniform(shape, seed=self.seed_generator) < keep
        return inputs * ops.cast(mask, inputs.dtype) / ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
