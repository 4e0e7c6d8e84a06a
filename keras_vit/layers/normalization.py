"""LayerNorm (Ba et al., 2016) with ViT's epsilon and a converter-friendly form."""

import keras
from keras import ops

from keras_vit.layers.formulation import current_formulation
from keras_vit.registration import register


@register
class LayerNorm(keras.layers.Layer):
    """Layer normalization over the last axis, computed in float32.

    Numerically the same as ``keras.layers.LayerNormalization(epsilon=...)``.
    The formulation's ``layer_norm`` picks the form: ``"fused"``
    (``keras.ops.layer_normalization``, training), ``"decomposed"``
    (``d = x - mean(x); d * rsqrt(mean(d * d) + eps) * gamma + beta``, which TFLite
    quantizes to integer ops; the fused form leaves a float ``NEG``) or ``"newton"``
    (decomposed, with one Newton step ``y (1.5 - 0.5 v y^2)`` on ``y = rsqrt(v)``).
    Under mixed precision the statistics are still computed in float32.

    Args:
        epsilon: added to the variance; ViT uses 1e-6 (Keras defaults to 1e-3).

    Example:
        >>> import numpy as np
        >>> tuple(LayerNorm()(np.ones((2, 5, 8), "float32")).shape)
        (2, 5, 8)
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0; received epsilon={epsilon}.")
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"LayerNorm needs a known last axis; received shape {input_shape}.")
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        gamma = ops.cast(self.gamma, "float32")
        beta = ops.cast(self.beta, "float32")
        form = current_formulation().layer_norm
        if form == "fused":
            return ops.cast(ops.layer_normalization(x, gamma, beta, axis=-1, epsilon=self.epsilon), self.compute_dtype)
        d = x - ops.mean(x, axis=-1, keepdims=True)
        variance = ops.mean(d * d, axis=-1, keepdims=True) + self.epsilon
        inverse = ops.rsqrt(variance)
        if form == "newton":
            # TFLite's quantized RSQRT is a lookup table, coarse for small variances; the Newton step
            # works on v * y^2 ~ 1, a range integer MULs hold well (benchmarks/RESULTS.md, int16x8).
            inverse = inverse * (1.5 - 0.5 * (variance * (inverse * inverse)))
        return ops.cast(d * inverse * gamma + beta, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
