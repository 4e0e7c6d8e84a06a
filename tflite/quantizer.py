"""Mixed int8 graphs from a float ``.tflite``, written by ``ai-edge-quantizer`` with per-op recipes.

The TFLite converter quantizes a whole graph or nothing. ``ai-edge-quantizer`` (Google's, pinned
at 0.10.0: it pins our ai-edge-litert 2.3.0) rewrites a float file op by op, matched by op name and
tensor-name regex, so the int8 parts can be exactly the ones XNNPACK runs fast and the rest stays
float inside the same XNNPACK partition (QUANTIZE / DEQUANTIZE are delegated; SOFTMAX, RSQRT, GELU
have no int8 XNNPACK kernel).

Recipes (names used by :class:`keras_vit.tflite.modes.ConverterSettings.quantizer_recipe`):

* ``fc_int8``: static int8 for ``FULLY_CONNECTED`` only: activations asymmetric per tensor,
  weights symmetric per output channel. Everything else float32.
* ``fc_bmm_int8``: also the attention ``BATCH_MATMUL`` with symmetric activations (XNNPACK takes an
  int8 product of two activations only when the right-hand zero point is 0).
* ``all_int8``: every op the quantizer supports in static int8, the attention ``BATCH_MATMUL`` with
  symmetric activations (a probe of an integer graph that keeps its products inside XNNPACK).

Example:
    >>> data = quantize_tflite(float_bytes, "fc_int8", images)   # doctest: +SKIP
"""

INSTALL = "pip install ai-edge-quantizer==0.10.0"
_SIGNATURE = "serving_default"


def _config(symmetric: bool) -> dict:
    return {
        "activation_tensor_config": {"num_bits": 8, "symmetric": symmetric, "granularity": "TENSORWISE",
                                     "dtype": "INT"},
        "weight_tensor_config": {"num_bits": 8, "symmetric": True, "granularity": "CHANNELWISE", "dtype": "INT"},
        "compute_precision": "INTEGER",
        "explicit_dequantize": False,
        "skip_checks": False,
        "min_weight_elements": 0,
    }


def _rule(operation: str, symmetric: bool) -> dict:
    return {"regex": ".*", "operation": operation, "algorithm_key": "min_max_uniform_quantize",
            "op_config": _config(symmetric)}


RECIPES = {
    "fc_int8": [_rule("FULLY_CONNECTED", symmetric=False)],
    "fc_bmm_int8": [_rule("FULLY_CONNECTED", symmetric=False), _rule("BATCH_MATMUL", symmetric=True)],
    "all_int8": [_rule("*", symmetric=False), _rule("BATCH_MATMUL", symmetric=True)],
}


def quantize_tflite(float_bytes: bytes, recipe: str, images, input_name: str = "images") -> bytes:
    """``float_bytes`` rewritten by ``ai-edge-quantizer`` with the recipe called ``recipe``.

    Args:
        float_bytes: a float32 ``.tflite`` with one signature (``serving_default``).
        recipe: a key of :data:`RECIPES`.
        images: calibration inputs ``(N, H, W, C)`` float32, as the float graph takes them.
        input_name: the signature's input name.

    Returns:
        The quantized ``.tflite`` bytes (float32 input and output).

    Raises:
        ImportError: naming the install command when ``ai-edge-quantizer`` is missing.
        ValueError: for an unknown recipe.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}; received recipe={recipe!r}.")
    try:
        from ai_edge_quantizer import quantizer
    except ImportError as error:
        raise ImportError(f"This mode quantizes with ai-edge-quantizer; install it with `{INSTALL}` "
                          f"(or `pip install keras-vit[export]`).") from error

    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    job = quantizer.Quantizer(bytes(float_bytes), RECIPES[recipe])
    rules = recipe_manager.RecipeManager()
    rules.load_quantization_recipe(RECIPES[recipe])
    # Each tensor's range over all images, as the TFLite converter calibrates; the quantizer's default
    # moving average of per-image ranges clips outliers (measured: -3.6 pt top-1 on CIFAR-10).
    calibration = calibrator.Calibrator(bytes(float_bytes), num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    calibration.calibrate({_SIGNATURE: [{input_name: image[None]} for image in images]}, rules)
    return bytes(job.quantize(calibration.get_model_qsvs(), enable_progress_report=False).quantized_model)
