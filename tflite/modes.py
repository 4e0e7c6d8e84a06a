"""The export modes. Each one carries its whole contract: the graph it traces, how the converter
quantizes it, its input/output type, and how close it must stay to Keras.

TensorFlow-free (converter settings are plain names that :mod:`keras_vit.tflite.convert` maps to
``tf.lite`` values), so the verifier and the runtime can read it on a device.
"""

import dataclasses

from keras_vit.layers.formulation import EXPORT, Formulation


@dataclasses.dataclass(frozen=True)
class ConverterSettings:
    """What ``tf.lite.TFLiteConverter`` is told, as names.

    Attributes:
        optimizations: ``tf.lite.Optimize`` names, e.g. ``("DEFAULT",)``.
        supported_ops: ``tf.lite.OpsSet`` names.
        supported_types: dtype names for ``target_spec.supported_types``, e.g. ``("float16",)``.
        unfold_batchmatmul: the converter writes each activation x activation ``BATCH_MATMUL`` as
            ``SPLIT`` + one ``FULLY_CONNECTED`` per head.
        per_channel: per-channel weight scales (False: one scale per tensor).
        quantizer_recipe: the name of an ``ai-edge-quantizer`` recipe in :mod:`keras_vit.tflite.quantizer`:
            the converter writes a float32 file and the quantizer rewrites it with that recipe (``""``: none).
    """

    optimizations: tuple = ()
    supported_ops: tuple = ("TFLITE_BUILTINS",)
    supported_types: tuple = ()
    unfold_batchmatmul: bool = False
    per_channel: bool = True
    quantizer_recipe: str = ""


@dataclasses.dataclass(frozen=True)
class Mode:
    """One export mode.

    Attributes:
        name: the mode's name on the command line and in the API.
        description: one line for tables and ``--help``.
        io_dtype: dtype of the model's input and output tensors (also the converter's inference types).
        integer_only: every op inside must be integer (QUANTIZE/DEQUANTIZE allowed at the edges only).
        needs_calibration: full-integer modes need representative images.
        max_relative_error: verifier threshold on ``max|tflite - keras| / max|keras|`` of the logits.
        min_top1_agreement: verifier threshold on the share of images whose top-1 class matches Keras.
        formulation: the :class:`keras_vit.layers.Formulation` the model is traced in.
        converter: the :class:`ConverterSettings`.
        target: a downstream compiler whose compatibility report the verifier adds (``"edgetpu"``), or ``""``.
        pixel_input: the graph takes 0-255 pixels and normalizes them itself (the model's mean/std
            inside), so MediaPipe runs it with mean 0 / std 1 metadata: the files apps consume. False:
            the caller feeds ``(pixel / 255 - mean) / std``.
    """

    name: str
    description: str
    io_dtype: str
    integer_only: bool
    needs_calibration: bool
    max_relative_error: float
    min_top1_agreement: float
    formulation: Formulation = EXPORT
    converter: ConverterSettings = ConverterSettings()
    target: str = ""
    pixel_input: bool = False


_QUANTIZE = ("DEFAULT",)
_INT8_OPS = ("TFLITE_BUILTINS_INT8",)
# Unfolded: LiteRT's int8 BATCH_MATMUL kernel is ~10x slower than per-head int8 FULLY_CONNECTED on x86.
# The fused GELU stays: its sigmoid form measured slower in int8 (benchmarks/RESULTS.md, tflite_op_profile.py).
_FULL_INT8 = ConverterSettings(_QUANTIZE, _INT8_OPS, unfold_batchmatmul=True)

MODES = {
    m.name: m
    for m in (
        Mode("float32", "float32 weights and activations; pixels in", "float32", False, False, 1e-4, 1.0,
             pixel_input=True),
        Mode("float16", "float16 weights, float32 compute; pixels in", "float32", False, False, 5e-3, 0.98,
             converter=ConverterSettings(_QUANTIZE, supported_types=("float16",)), pixel_input=True),
        Mode("dynamic", "int8 weights, activations quantized on the fly; pixels in", "float32", False, False,
             0.15, 0.9, converter=ConverterSettings(_QUANTIZE), pixel_input=True),
        # Static int8 FULLY_CONNECTED (per-channel weights) by ai-edge-quantizer, the rest float32: one
        # XNNPACK partition, so its int8 GEMMs run there (benchmarks/RESULTS.md, "int8 on a CPU").
        Mode("int8_cpu", "int8 matmuls, float elsewhere, float32 pixels in (Pi, Android CPU)", "float32", False,
             True, 0.25, 0.85, converter=ConverterSettings(quantizer_recipe="fc_int8"), pixel_input=True),
        # Normalized int8 input: the file for our runtime and NNAPI (MediaPipe refuses an int8 input).
        Mode("int8", "full integer, int8 input/output (our runtime, NNAPI)", "int8", True, True, 0.25, 0.85,
             converter=_FULL_INT8),
        # Pixels in: the input's scale 1 / zero point 0 is exact for the raw pixels MediaPipe feeds it.
        Mode("uint8", "full integer, uint8 pixels in (MediaPipe, Android)", "uint8", True, True, 0.25, 0.85,
             converter=_FULL_INT8, pixel_input=True),
        # The Newton step on rsqrt: TFLite's int16 RSQRT lookup table is coarse for small-variance tokens
        # (benchmarks/RESULTS.md); 16x8 is no closer to float than int8 here, so the same limits apply.
        Mode("int16x8", "int16 activations, int8 weights, float32 input/output", "float32", True, True, 0.25, 0.85,
             formulation=Formulation(gelu="erf", layer_norm="newton"),
             converter=ConverterSettings(_QUANTIZE, ("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",))),
        # Ops the Edge TPU compiler reads: per-head 2-D products, GELU as elementwise ops, the patch
        # embedding as one CONV_2D (it takes no tensor with more than 3 dimensions larger than 1).
        Mode("edgetpu", "full integer for the Coral Edge TPU compiler, uint8 input/output", "uint8", True, True,
             0.25, 0.85,
             formulation=Formulation(attention="per_head", gelu="sigmoid", layer_norm="decomposed",
                                     patch_embedding="conv"),
             converter=ConverterSettings(_QUANTIZE, _INT8_OPS), target="edgetpu"),
    )
}


def get_mode(mode) -> Mode:
    """Returns the :class:`Mode` called ``mode`` (a :class:`Mode` is returned as it is).

    Raises:
        ValueError: naming the value received and the modes that exist.

    Example:
        >>> get_mode("int8").io_dtype
        'int8'
        >>> get_mode("edgetpu").formulation.attention
        'per_head'
    """
    if isinstance(mode, Mode):
        return mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}; received mode={mode!r}.")
    return MODES[mode]
