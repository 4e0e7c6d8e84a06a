"""GELU (Hendrycks & Gimpel, 2016) in the form the traced graph asks for."""

import math

from keras import activations, ops

from keras_vit.layers.formulation import current_formulation

_TANH_SCALE = math.sqrt(2.0 / math.pi)


def gelu(x):
    """GELU, ``x * Phi(x)``, in the current formulation's ``gelu`` form.

    ``"exact"``: Keras' fused kernel (training). ``"erf"``: ``0.5 x (1 + erf(x / sqrt(2)))``, the
    same function. ``"tanh"``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, the tanh
    approximation. ``"sigmoid"``: ``x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))``, the tanh
    approximation rewritten with ``0.5 (1 + tanh(z)) = sigmoid(2 z)``, so the converter keeps it
    as elementwise ops instead of a fused ``GELU`` op.

    Example:
        >>> import numpy as np
        >>> round(float(gelu(np.float32(1.0))), 4)
        0.8413
    """
    form = current_formulation().gelu
    if form == "exact":
        return activations.gelu(x, approximate=False)
    if form == "tanh":
        return activations.gelu(x, approximate=True)
    if form == "sigmoid":
        return x * ops.sigmoid((2.0 * _TANH_SCALE) * (x + 0.044715 * (x * x * x)))
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
