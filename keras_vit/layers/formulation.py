"""Which formulation of LayerNorm and GELU a traced graph uses.

Training wants the fused kernels (``keras.ops.layer_normalization`` and exact
``keras.activations.gelu``): they were measured ~35% faster here than the
hand-written forms. Export wants forms that every converter can read:

* TFLite's quantizer turns the fused LayerNorm into a float ``NEG`` island
  inside a "full int8" graph and 16x8 quantization fails on it, while
  ``d = x - mean(x); d * rsqrt(mean(d * d) + eps) * gamma + beta`` converts to
  integer kernels.
* TensorFlow lowers exact GELU to ``Erfc``, which tf2onnx cannot convert;
  ``0.5 * x * (1 + erf(x / sqrt(2)))`` is the same function and converts.
* The Edge TPU compiler cannot parse TFLite's fused ``GELU`` op, so its export
  asks for a GELU built from ops it knows (``gelu="tanh"``: the tanh
  approximation, max abs difference 4.7e-4 from exact GELU).

The choice is made at trace time, so one set of weights serves every graph;
``tests/test_formulation.py`` proves the forms agree to 1e-5.

Example:
    >>> import numpy as np, keras_vit
    >>> model = keras_vit.create_model("vit_test")
    >>> x = np.zeros((1, 32, 32, 3), "float32")
    >>> with keras_vit.layers.export_formulation():
    ...     y = model(x)   # traced with the decomposed LayerNorm and erf GELU
"""

import contextlib
import threading

GELU_FORMS = ("exact", "erf", "tanh")
LAYER_NORM_FORMS = ("fused", "decomposed")

_state = threading.local()


def current_formulation() -> dict:
    """Returns ``{"gelu": ..., "layer_norm": ...}`` for the graph being traced."""
    return getattr(_state, "formulation", {"gelu": "exact", "layer_norm": "fused"})


@contextlib.contextmanager
def export_formulation(gelu: str = "erf", layer_norm: str = "decomposed"):
    """Traces LayerNorm and GELU in converter-friendly forms inside the block.

    Args:
        gelu: ``"erf"`` (exact, written with ``erf``), ``"tanh"`` (the tanh
            approximation, for the Edge TPU) or ``"exact"`` (the fused kernel).
        layer_norm: ``"decomposed"`` (mean, subtract, rsqrt, multiply) or
            ``"fused"``.
    """
    if gelu not in GELU_FORMS:
        raise ValueError(f"gelu must be one of {GELU_FORMS}; received gelu={gelu!r}.")
    if layer_norm not in LAYER_NORM_FORMS:
        raise ValueError(
            f"layer_norm must be one of {LAYER_NORM_FORMS}; "
            f"received layer_norm={layer_norm!r}."
        )
    previous = current_formulation()
    _state.formulation = {"gelu": gelu, "layer_norm": layer_norm}
    try:
        yield
    finally:
        _state.formulation = previous
