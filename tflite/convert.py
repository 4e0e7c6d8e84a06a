"""``export_tflite``: a Keras ViT -> ``.tflite`` in one of the modes, with its metadata and JSON contract.

The model is traced through its own call with a batch-1 fixed signature (input ``images``, output
``probabilities`` or ``logits``) in the mode's :class:`keras_vit.layers.Formulation`
(:mod:`keras_vit.tflite.graph`), written as a SavedModel, and converted with the mode's converter
settings (:mod:`keras_vit.tflite.modes`) using TFLite builtin ops only: an op that would need Flex
(``SELECT_TF_OPS``) makes the export fail with a message naming it. A mode with a quantizer recipe
is converted to float32 and then rewritten by ``ai-edge-quantizer`` (:mod:`keras_vit.tflite.quantizer`).
The TFLite metadata that apps read (labels, normalization; :mod:`keras_vit.tflite.metadata`) goes
into the bytes before they are written, so the contract's sha256 is that of the final file.

Example:
    >>> import keras_vit
    >>> from keras_vit.tflite.convert import export_tflite
    >>> model = keras_vit.create_model("vit_test")
    >>> report = export_tflite(model, "/tmp/vit_test.tflite", mode="float32")   # doctest: +SKIP
    >>> report["ops"]["FULLY_CONNECTED"]                                          # doctest: +SKIP
    10
"""

import dataclasses
import os
import re
import tempfile
import time

from keras_vit.tflite.modes import get_mode


class ExportError(RuntimeError):
    """The converter could not produce a builtin-only model (names the offending ops)."""


def _converter(saved_model_dir, mode, images):
    """``tf.lite.TFLiteConverter`` configured from ``mode.converter`` (names -> ``tf.lite`` values)."""
    import tensorflow as tf

    from keras_vit.tflite.calibration import representative_dataset

    settings = mode.converter
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.experimental_enable_resource_variables = False
    converter.optimizations = [getattr(tf.lite.Optimize, name) for name in settings.optimizations]
    converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, name) for name in settings.supported_ops]
    converter.target_spec.supported_types = [tf.as_dtype(name) for name in settings.supported_types]
    converter.inference_input_type = converter.inference_output_type = tf.as_dtype(mode.io_dtype)
    converter.unfold_batchmatmul = settings.unfold_batchmatmul
    converter._experimental_disable_per_channel = not settings.per_channel
    if images is not None:
        converter.representative_dataset = representative_dataset(images, f"calibrating {mode.name}")
    return converter


def _convert(converter) -> bytes:
    try:
        return converter.convert()
    except Exception as error:  # ConverterError, RuntimeError from the calibrator
        message = str(error)
        ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", message)))
        if ops:
            raise ExportError(
                f"The model needs TensorFlow ops that TFLite has no builtin kernel for: {', '.join(ops)}. "
                f"Edge models may not use Flex (SELECT_TF_OPS). Export inside "
                f"keras_vit.layers.export_formulation() or change the layer that emits them."
            ) from error
        raise ExportError(f"TFLite conversion failed: {message.strip()[-2000:]}") from error


def _convert_mode(saved_model_dir, mode, images) -> bytes:
    """The converter's bytes for ``mode``; a quantizer recipe rewrites a float32 conversion."""
    recipe = mode.converter.quantizer_recipe
    if not recipe:
        return _convert(_converter(saved_model_dir, mode, images))
    from keras_vit.tflite.modes import ConverterSettings
    from keras_vit.tflite.quantizer import quantize_tflite

    float_mode = dataclasses.replace(mode, io_dtype="float32", converter=ConverterSettings())
    return quantize_tflite(_convert(_converter(saved_model_dir, float_mode, None)), recipe, images)


def _exact_pixel_input(data: bytes) -> bytes:
    """A uint8 pixel input quantized as the pixels themselves (scale 1, zero point 0).

    The calibrated input range is that of the calibration images (rarely exactly 0..255). The
    uint8 input only feeds the converter's QUANTIZE to the int8 graph, which requantizes any input
    scale, so setting it is exact for integer pixels; MediaPipe feeds a uint8 input raw pixels.
    """
    import numpy as np
    from ai_edge_litert import schema_py_generated as tfl
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytes(data))
    graph = model.subgraphs[0]
    index = graph.inputs[0]
    readers = [op for op in graph.operators if index in list(op.inputs)]
    names = [model.operatorCodes[op.opcodeIndex].builtinCode for op in readers]
    if len(readers) != 1 or names[0] != tfl.BuiltinOperator.QUANTIZE:
        raise ExportError(f"Expected the uint8 input to feed one QUANTIZE op; it feeds {names}.")
    quantization = graph.tensors[index].quantization
    quantization.scale, quantization.zeroPoint = np.array([1.0], np.float32), np.array([0], np.int64)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_tflite(model, output_path, mode: str = "int8", calibration=None, preprocessing=None, labels=None, *,
                  calibration_size: int = 300, formulation=None, per_channel=None,
                  outputs: str = "probabilities") -> dict:
    """Converts ``model`` to ``output_path`` (.tflite) and writes ``<stem>.json`` beside it.

    Args:
        model: a ``keras_vit.VisionTransformer`` (or a functional model built from its layers).
        output_path: where the ``.tflite`` goes; the contract goes to the same stem with ``.json``.
        mode: a name in :data:`keras_vit.tflite.modes.MODES` (``"float32"``, ``"int8_cpu"``, ``"int8"``,
            ``"uint8"``, ``"edgetpu"``, ...) or a :class:`keras_vit.tflite.modes.Mode`. A mode with
            ``pixel_input`` takes 0-255 pixels and normalizes them in the graph.
        calibration: representative images for the full-integer modes: a normalized float32 or uint8
            array ``(N, H, W, C)``, an iterable of arrays, or an image folder path.
        preprocessing: the input contract (``keras_vit.preprocessing.Preprocessing`` or its dict);
            default ``Preprocessing.for_model(model)``.
        labels: class names in output order (default: the model's ``class_names``, else ``"0"``, ``"1"``, ...).
        calibration_size: at most this many calibration images are used.
        formulation: a :class:`keras_vit.layers.Formulation`; default ``mode.formulation``.
        per_channel: per-channel (True) or per-tensor (False) weight scales; default the mode's.
        outputs: ``"probabilities"`` (the graph ends in softmax, what MediaPipe reports as scores) or
            ``"logits"``.

    Returns:
        ``{"path", "contract_path", "mode", "outputs", "size_bytes", "ops", "seconds", "calibration_images"}``.

    Raises:
        ValueError: for a bad mode, labels that do not match the outputs, or bad calibration data.
        ExportError: when the conversion fails or would need Flex ops.
    """
    from ai_edge_litert.interpreter import Interpreter

    from keras_vit.preprocessing import Preprocessing
    from keras_vit.tflite.calibration import calibration_images
    from keras_vit.atomic import atomic_write
    from keras_vit.tflite.contract import model_labels, tensor_entry, write_contract
    from keras_vit.tflite.inspection import inspect_bytes
    from keras_vit.tflite.metadata import add_metadata, check_outputs
    from keras_vit.tflite.runtime import to_pixels

    mode = get_mode(mode)
    check_outputs(outputs)
    output_path = os.fspath(output_path)
    if not output_path.endswith(".tflite"):
        raise ValueError(f"output_path must end with .tflite; received output_path={output_path!r}.")
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    preprocessing = preprocessing or Preprocessing.for_model(model)
    expected = tuple(model.input_shape[1:])
    if tuple(preprocessing.image_size) + (preprocessing.channels,) != expected:
        raise ValueError(
            f"preprocessing describes {preprocessing.image_size}x{preprocessing.channels} images but the model "
            f"takes {expected}; pass Preprocessing.for_model(model)."
        )
    num_outputs = int(model.output_shape[-1])
    labels = model_labels(model, labels)
    images = calibration_images(calibration, preprocessing, calibration_size) if mode.needs_calibration else None
    if formulation is not None:
        mode = dataclasses.replace(mode, formulation=formulation)
    if per_channel is not None:
        mode = dataclasses.replace(mode, converter=dataclasses.replace(mode.converter, per_channel=per_channel))

    start = time.perf_counter()
    from keras_vit.tflite.graph import write_saved_model

    pixels = preprocessing if mode.pixel_input else None
    graph_images = images if pixels is None or images is None else to_pixels(images, preprocessing)
    with tempfile.TemporaryDirectory(prefix="keras_vit_export_") as saved_model_dir:
        write_saved_model(model, saved_model_dir, mode.formulation, outputs, pixels)
        data = _convert_mode(saved_model_dir, mode, graph_images)
    if pixels is not None and mode.io_dtype == "uint8":
        data = _exact_pixel_input(data)
    # The file's own normalization: mean 0 / std 1 in the pixel domain when the graph normalizes.
    described = dataclasses.replace(preprocessing, mean=0.0, std=1 / 255) if pixels is not None else preprocessing
    data = add_metadata(data, labels, described, outputs=outputs, name=getattr(model, "name", None) or "keras_vit",
                        description=f"keras_vit image classifier, {mode.name} export ({mode.description}).")
    info = inspect_bytes(data, output_path)
    if info.flex_ops() or info.custom_ops():
        raise ExportError(f"The converted model contains non-builtin ops {info.flex_ops() + info.custom_ops()}.")
    interpreter = Interpreter(model_content=data)
    input_detail, output_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if int(output_detail["shape"][-1]) != num_outputs:
        raise ExportError(f"Converted model has {output_detail['shape']} outputs; expected {num_outputs}.")
    atomic_write(output_path, data)
    contract = write_contract(
        output_path, mode.name, preprocessing.to_dict(), labels,
        tensor_entry(input_detail, "images"), tensor_entry(output_detail, outputs),
        extra={"model": getattr(model, "name", None), "outputs": outputs,
               "normalization": "in_graph" if pixels is not None else "caller",
               "formulation": dataclasses.asdict(mode.formulation),
               "converter": dataclasses.asdict(mode.converter),
               "calibration_images": 0 if images is None else len(images)},
    )
    return {
        "path": output_path,
        "contract_path": contract,
        "mode": mode.name,
        "outputs": outputs,
        "size_bytes": len(data),
        "ops": dict(info.op_counts()),
        "seconds": round(time.perf_counter() - start, 2),
        "calibration_images": 0 if images is None else len(images),
    }
