"""The export modes: what each one quantizes, its input/output type, and how close it must stay to Keras.

NumPy-free and TensorFlow-free, so the runtime and the verifier can read it anywhere.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Mode:
    """One export mode.

    Attributes:
        name: the mode's name on the command line and in the API.
        description: one line for tables and ``--help``.
        io_dtype: dtype of the model's input and output tensors.
        integer_only: every op inside must be integer (QUANTIZE/DEQUANTIZE allowed at the edges only).
        needs_calibration: full-integer modes need representative images.
        max_relative_error: verifier threshold on ``max|tflite - keras| / max|keras|`` of the logits.
        min_top1_agreement: verifier threshold on the share of images whose top-1 class matches Keras.
    """

    name: str
    description: str
    io_dtype: str
    integer_only: bool
    needs_calibration: bool
    max_relative_error: float
    min_top1_agreement: float


MODES = {
    m.name: m
    for m in (
        Mode("float32", "float32 weights and activations", "float32", False, False, 1e-4, 1.0),
        Mode("float16", "float16 weights, float32 compute", "float32", False, False, 5e-3, 0.98),
        Mode("dynamic", "int8 weights, activations quantized on the fly", "float32", False, False, 0.15, 0.9),
        Mode("int8", "full integer, int8 input/output (Android)", "int8", True, True, 0.25, 0.85),
        Mode("uint8", "full integer, uint8 input/output (Android, Coral)", "uint8", True, True, 0.25, 0.85),
        # 16x8 is not closer to float than int8 here: TFLite's int16 RSQRT is a lookup table that is
        # coarse for small-variance tokens (measured; benchmarks/RESULTS.md), so the same limits apply.
        Mode("int16x8", "int16 activations, int8 weights, float32 input/output", "float32", True, True, 0.25, 0.85),
        Mode("edgetpu", "full integer for the Coral Edge TPU compiler, uint8 input/output", "uint8", True, True,
             0.25, 0.85),
    )
}


def get_mode(name: str) -> Mode:
    """Returns the :class:`Mode` called ``name``.

    Raises:
        ValueError: naming the value received and the modes that exist.

    Example:
        >>> get_mode("int8").io_dtype
        'int8'
    """
    if name not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}; received mode={name!r}.")
    return MODES[name]
