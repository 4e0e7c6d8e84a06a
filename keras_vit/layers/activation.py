"""GELU (Hendrycks & Gimpel, 2016) in the form each graph needs."""

import math

from keras import activations, ops

from keras_vit.layers.formulation import current_formulation


def gelu(x):
    """Exact GELU, ``x * Phi(x)``, traced in the current formulation.

    Training uses Keras' fused exact GELU; under ``export_formulation()`` it is
    ``0.5 * x * (1 + erf(x / sqrt(2)))`` (identical function; converts to ONNX
    and TFLite) or, for the Edge TPU, the tanh approximation.

    Example:
        >>> import numpy as np
        >>> round(float(gelu(np.float32(1.0))), 4)
        0.8413
    """
    form = current_formulation()["gelu"]
    if form == "exact":
        return activations.gelu(x, approximate=False)
    if form == "tanh":
        return activations.gelu(x, approximate=True)
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
