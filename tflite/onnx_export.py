"""ONNX export through tf2onnx (opset 17), checked with onnxruntime against Keras.

The model is traced in the export formulation (decomposed LayerNorm, erf GELU: exact GELU lowers
to ``Erfc``, which tf2onnx cannot convert) with a batch-1 fixed signature, input ``images`` and
output ``logits``. The file is written atomically.

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
        labels: class names (written to ``<stem>.json`` with the preprocessing contract).
        opset: ONNX opset (18 or lower).
        tolerance: the largest max-abs logit difference that counts as "ok".

    Returns:
        ``{"path", "opset", "size_bytes", "nodes", "max_abs_error", "top1_agreement", "ok"}``.
    """
    import json

    import tensorflow as tf
    import tf2onnx

    from keras_vit.preprocessing import Preprocessing
    from keras_vit.atomic import atomic_write
    from keras_vit.tflite.contract import FORMAT, check_labels
    from keras_vit.tflite.graph import Formulation, forward

    if not 7 <= opset <= 18:
        raise ValueError(f"opset must be between 7 and 18; received opset={opset}.")
    output_path = os.fspath(output_path)
    shape = (1,) + tuple(model.input_shape[1:])
    num_outputs = int(model.output_shape[-1])
    labels = check_labels(labels, num_outputs)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    def serve(images):
        return {"logits": forward(model, images, Formulation(gelu="erf"))}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=opset,
                                             output_path=None)
    data = proto.SerializeToString()
    atomic_write(output_path, data)
    preprocessing = Preprocessing.for_model(model)
    atomic_write(os.path.splitext(output_path)[0] + ".json", json.dumps({
        "format": FORMAT, "mode": "onnx", "labels": labels, "preprocessing": preprocessing.to_dict(),
        "input": {"name": proto.graph.input[0].name, "shape": list(shape), "dtype": "float32", "scale": 0.0,
                  "zero_point": 0, "layout": "NHWC"},
        "output": {"name": proto.graph.output[0].name, "shape": [1, num_outputs], "dtype": "float32",
                   "scale": 0.0, "zero_point": 0, "layout": None},
        "opset": opset,
    }, indent=2) + "\n")
    report = {"path": output_path, "opset": opset, "size_bytes": len(data), "nodes": len(proto.graph.node)}
    if images is not None:
        report.update(compare_onnx(output_path, model, images, preprocessing, tolerance))
    return report


def compare_onnx(path, model, images, preprocessing, tolerance: float = 1e-4) -> dict:
    """Runs the ONNX file with onnxruntime (one image at a time) and compares with Keras."""
    import onnxruntime as ort

    images = np.asarray(images)
    images = preprocessing.normalize(images) if images.dtype == np.uint8 else images.astype(np.float32)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    actual = np.concatenate([session.run(None, {name: image[None]})[0] for image in images])
    expected = np.asarray(model.predict(images, batch_size=64, verbose=0))
    error = float(np.abs(actual - expected).max())
    agreement = float(np.mean(actual.argmax(-1) == expected.argmax(-1)))
    return {"images": len(images), "max_abs_error": error, "top1_agreement": agreement, "ok": error <= tolerance}
