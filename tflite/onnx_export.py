"""ONNX export through tf2onnx (opset 17), checked with onnxruntime against Keras.

The model is traced through its own call in ``keras_vit.layers.formulation.EXPORT`` (decomposed
LayerNorm, erf GELU: exact GELU lowers to ``Erfc``, which tf2onnx cannot convert) with a batch-1
fixed signature, input ``images`` and output ``logits`` (:mod:`keras_vit.tflite.graph`). The file
is written atomically.

Example:
    >>> report = export_onnx(model, "vit.onnx", images=pixels)    # doctest: +SKIP
    >>> report["max_abs_error"] <= 1e-4                           # doctest: +SKIP
    True
"""

import os

import numpy as np

OPSET = 17


def export_onnx(model, output_path, images=None, labels=None, opset: int = OPSET, tolerance: float = 1e-4) -> dict:
    """Writes ``model`` as ONNX to ``output_path``; with ``images``, compares onnxruntime with Keras.

    Args:
        model: a ``keras_vit.VisionTransformer``.
        output_path: the ``.onnx`` file.
        images: uint8 pixels or normalized float32 images ``(N, H, W, C)`` for the parity check.
        labels: class names (default: the model's ``class_names``; written to ``<stem>.json`` with the contract).
        opset: ONNX opset (18 or lower).
        tolerance: the largest max-abs logit difference that counts as "ok".

    Returns:
        ``{"path", "opset", "size_bytes", "nodes", "max_abs_error", "top1_agreement", "ok"}``.
    """
    import tf2onnx

    from keras_vit.layers.formulation import EXPORT
    from keras_vit.atomic import atomic_write
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.tflite.contract import model_labels, write_contract
    from keras_vit.tflite.graph import serving_function

    if not 7 <= opset <= 18:
        raise ValueError(f"opset must be between 7 and 18; received opset={opset}.")
    output_path = os.fspath(output_path)
    shape = (1,) + tuple(model.input_shape[1:])
    num_outputs = int(model.output_shape[-1])
    labels = model_labels(model, labels)

    serve = serving_function(model, EXPORT)
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=opset,
                                             output_path=None)
    data = proto.SerializeToString()
    atomic_write(output_path, data)
    preprocessing = Preprocessing.for_model(model)
    inputs = _float_entry(proto.graph.input[0].name, shape)
    outputs = _float_entry(proto.graph.output[0].name, (1, num_outputs))
    write_contract(output_path, "onnx", preprocessing.to_dict(), labels, inputs, outputs,
                   extra={"model": getattr(model, "name", None), "opset": opset})
    report = {"path": output_path, "opset": opset, "size_bytes": len(data), "nodes": len(proto.graph.node)}
    if images is not None:
        report.update(compare_onnx(output_path, model, images, preprocessing, tolerance))
    return report


def _float_entry(name, shape) -> dict:
    """The contract's description of an unquantized float32 tensor."""
    return {"name": name, "shape": [int(s) for s in shape], "dtype": "float32", "scale": 0.0, "zero_point": 0,
            "layout": "NHWC" if len(shape) == 4 else None}


def compare_onnx(path, model, images, preprocessing, tolerance: float = 1e-4) -> dict:
    """Runs the ONNX file with onnxruntime (one image at a time) and compares with Keras.

    Returns:
        :func:`keras_vit.tflite.parity.compare_logits`' metrics, plus ``"ok"``: max abs error <= ``tolerance``.
    """
    import onnxruntime as ort

    from keras_vit.tflite.parity import compare

    images = preprocessing.to_inputs(images, "ONNX parity images")
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(batch):
        return np.concatenate([session.run(None, {name: image[None]})[0] for image in batch])

    metrics = compare(model, predict, images)
    return {**metrics, "ok": metrics["max_abs_error"] <= tolerance}
