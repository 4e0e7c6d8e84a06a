"""Edge export of keras_vit models: TFLite (float, fp16, dynamic-range, int8, uint8, 16x8, Edge TPU) and ONNX.

Modules, one role each:

* :mod:`keras_vit.tflite.modes` - the export modes and their verification thresholds.
* :mod:`keras_vit.tflite.calibration` - representative images for full-integer quantization.
* :mod:`keras_vit.tflite.contract` - the JSON file that travels beside a model (labels,
  preprocessing, quantization of input and output), written atomically.
* :mod:`keras_vit.tflite.graph` - the batch-1 trace of the model's own call that every export converts.
* :mod:`keras_vit.tflite.parity` - how close an export stays to Keras (one check for TFLite and ONNX).
* :mod:`keras_vit.tflite.convert` - ``export_tflite``: Keras model -> ``.tflite``.
* :mod:`keras_vit.tflite.inspection` - what is inside a ``.tflite`` file (ops, dtypes, Flex ops).
* :mod:`keras_vit.tflite.verify` - ``verify_tflite``: inspection plus parity with Keras.
* :mod:`keras_vit.tflite.runtime` - ``LiteRTModel``: runs a ``.tflite`` with ai_edge_litert alone.
* :mod:`keras_vit.tflite.selfcheck` - on a device: XNNPACK against LiteRT's reference kernels.
* :mod:`keras_vit.tflite.edgetpu` - Coral Edge TPU compatibility report.
* :mod:`keras_vit.tflite.onnx_export` - ONNX through tf2onnx, checked with onnxruntime.
* :mod:`keras_vit.tflite.metadata` - TFLite metadata inside the file (labels, normalization) for apps.
* :mod:`keras_vit.tflite.quantizer` - mixed int8 graphs written by ai-edge-quantizer with per-op recipes.
* ``cli_export``, ``cli_verify``, ``cli_predict``, ``cli_benchmark`` - the ``keras-vit`` commands.

Images are read by :mod:`keras_vit.images` (shared with training).

Nothing is imported here, so ``import keras_vit.tflite.runtime`` on a device never loads TensorFlow.
"""
