"""Which form of each layer a traced graph uses: one :class:`Formulation`, read at trace time.

The layers' own ``call`` is the only ViT forward pass. Where a converter or an accelerator
needs the same function written differently, the layer that owns the computation holds both
forms and picks one with ``current_formulation()``:

* ``attention`` (``MultiHeadSelfAttention``): ``"batch_matmul"``, q / k / v cut from the 3-D
  ``qkv`` tensor and multiplied for all heads at once; ``"per_head"``, each head's two products
  as 2-D matmuls at batch 1 (the converter writes ``q k^T`` as a ``FULLY_CONNECTED`` with an
  activation as weights); ``"broadcast"``, per head too, each product as an elementwise ``MUL``
  with broadcasting and a ``MEAN`` over one axis (times its length), ops on the Edge TPU
  compiler's published list, with no activation used as weights;
  ``"fused"``, ``keras.ops.dot_product_attention`` (cuDNN flash
  attention through JAX or PyTorch) whenever no attention weights are asked for and no
  attention dropout is active, ``"batch_matmul"`` otherwise; ``"auto"`` (training), ``"fused"``
  on GPUs and TPUs through JAX or PyTorch, ``"batch_matmul"`` on CPUs, where it measured faster.
* ``gelu`` (``gelu``): ``"exact"`` (Keras' fused kernel), ``"erf"`` (the same function with
  ``erf``; exact GELU lowers to ``Erfc``, which tf2onnx cannot convert), ``"tanh"`` (the tanh
  approximation) or ``"sigmoid"`` (the tanh approximation written with a sigmoid, an identity;
  the converter keeps it as elementwise ops instead of fusing a ``GELU`` op).
* ``layer_norm`` (``LayerNorm``): ``"fused"``, ``"decomposed"`` (mean, subtract, rsqrt,
  multiply: TFLite quantizes it to integer ops) or ``"newton"`` (decomposed, plus one Newton
  step on the rsqrt, for 16x8 quantization).
* ``patch_embedding`` (``Patches`` + ``PatchEncoder``): ``"dense"`` (patches, then a
  ``Dense``) or ``"conv"`` (the same kernel reshaped to ``(P, P, C, D)`` as one strided
  convolution on the image).

Training traces :data:`TRAINING` (the fused kernels: faster); ``export_formulation()`` traces
:data:`EXPORT` unless told otherwise. One set of weights serves every graph.

Example:
    >>> import numpy as np, keras_vit
    >>> model = keras_vit.create_model("vit_test")
    >>> x = np.zeros((1, 32, 32, 3), "float32")
    >>> with keras_vit.layers.export_formulation(Formulation(gelu="erf", layer_norm="newton")):
    ...     y = model(x)
    >>> current_formulation() == TRAINING
    True
"""

import contextlib
import dataclasses
import threading

ATTENTIONS = ("batch_matmul", "per_head", "broadcast", "fused", "auto")
GELUS = ("exact", "erf", "tanh", "sigmoid")
LAYER_NORMS = ("fused", "decomposed", "newton")
PATCH_EMBEDDINGS = ("dense", "conv")


@dataclasses.dataclass(frozen=True)
class Formulation:
    """The form each layer is traced in (see the module docstring for the choices).

    Args:
        attention: ``"batch_matmul"``, ``"per_head"`` or ``"broadcast"`` (both batch 1 only), ``"fused"`` or
            ``"auto"``.
        gelu: ``"exact"``, ``"erf"``, ``"tanh"`` or ``"sigmoid"``.
        layer_norm: ``"fused"``, ``"decomposed"`` or ``"newton"``.
        patch_embedding: ``"dense"`` or ``"conv"``.

    Raises:
        ValueError: naming the field, the value received and the choices.
    """

    attention: str = "batch_matmul"
    gelu: str = "exact"
    layer_norm: str = "fused"
    patch_embedding: str = "dense"

    def __post_init__(self):
        for field, choices in (("attention", ATTENTIONS), ("gelu", GELUS), ("layer_norm", LAYER_NORMS),
                               ("patch_embedding", PATCH_EMBEDDINGS)):
            value = getattr(self, field)
            if value not in choices:
                raise ValueError(f"{field} must be one of {choices}; received {field}={value!r}.")


FIELDS = tuple(f.name for f in dataclasses.fields(Formulation))
TRAINING = Formulation(attention="auto")
EXPORT = Formulation(gelu="erf", layer_norm="decomposed")

_state = threading.local()


def current_formulation() -> Formulation:
    """The :class:`Formulation` of the graph being traced (:data:`TRAINING` outside any block)."""
    return getattr(_state, "formulation", TRAINING)


@contextlib.contextmanager
def export_formulation(formulation: Formulation = EXPORT, **overrides):
    """Traces the layers in ``formulation`` inside the block, then restores the previous one.

    Args:
        formulation: a :class:`Formulation`; default :data:`EXPORT` (erf GELU, decomposed
            LayerNorm, the layer's batched attention, dense patch embedding).
        **overrides: fields to change in ``formulation``, e.g. ``export_formulation(gelu="tanh")``.
    """
    if not isinstance(formulation, Formulation):
        raise TypeError(
            f"formulation must be a keras_vit.layers.Formulation; received {type(formulation).__name__}. "
            f"Pass fields by keyword: export_formulation(gelu='tanh')."
        )
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise TypeError(f"Unknown formulation fields {unknown}; expected a subset of {FIELDS}.")
    chosen = dataclasses.replace(formulation, **overrides)
    previous = current_formulation()
    _state.formulation = chosen
    try:
        yield chosen
    finally:
        _state.formulation = previous

