"""The graph every export traces: the model's own call, batch 1, inside ``export_formulation()``.

There is no second forward pass here: each layer holds its export forms (see
:mod:`keras_vit.layers.formulation`) and the model's call picks them at trace time. Any functional
model built from our layers traces the same way. Input ``images``, a fixed ``(1, H, W, C)`` float32
signature; output ``probabilities`` (the graph ends in softmax) or ``logits``
(:func:`keras_vit.tflite.metadata.apply_outputs`).

With ``pixels`` (a :class:`keras_vit.preprocessing.Preprocessing`) the graph takes 0-255 pixels and
normalizes them itself, ``(pixel / 255 - mean) / std`` per channel as one multiply and one add: the
input contract of the files apps consume (MediaPipe feeds a uint8 input the pixels as they are and
normalizes a float32 input with one mean and std for every channel).

Example:
    >>> from keras_vit.layers import Formulation
    >>> fn = serving_function(model, Formulation(attention="per_head"))    # doctest: +SKIP
"""

INPUT_NAME = "images"


def input_signature(model):
    """The batch-1 float32 ``TensorSpec`` named ``images`` of ``model``'s input (TensorFlow backend only)."""
    from keras_vit.backend import require_tensorflow

    require_tensorflow("TFLite and ONNX export")
    import tensorflow as tf

    return [tf.TensorSpec((1,) + tuple(model.input_shape[1:]), tf.float32, name=INPUT_NAME)]


def _serve(model, formulation, outputs, pixels):
    import numpy as np

    from keras_vit.layers import export_formulation
    from keras_vit.tflite.metadata import apply_outputs, check_outputs

    check_outputs(outputs)
    if pixels is not None:
        std, mean = np.asarray(pixels.std, np.float32), np.asarray(pixels.mean, np.float32)
        scale, offset = 1.0 / (255.0 * std), -mean / std

    def serve(images):
        if pixels is not None:
            images = images * scale + offset
        with export_formulation(formulation):
            return {outputs: apply_outputs(model(images, training=False), outputs)}

    return serve


def serving_function(model, formulation, outputs: str = "logits", pixels=None):
    """A ``tf.function`` ``images -> {outputs: ...}`` that traces ``model`` in ``formulation``."""
    signature = input_signature(model)  # first: it says so when the backend is not TensorFlow
    import tensorflow as tf

    return tf.function(_serve(model, formulation, outputs, pixels), input_signature=signature)


def write_saved_model(model, directory: str, formulation, outputs: str = "probabilities", pixels=None) -> None:
    """Writes the serving function as a SavedModel (the TFLite converter freezes its variables)."""
    import keras

    signature = input_signature(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", _serve(model, formulation, outputs, pixels), input_signature=signature)
    archive.write_out(directory, verbose=False)
