"""The graph every export traces: the model's own call, batch 1, inside ``export_formulation()``.

There is no second forward pass here: each layer holds its export forms (see
:mod:`keras_vit.layers.formulation`) and the model's call picks them at trace time. Any functional
model built from our layers traces the same way. Input ``images``, output ``logits``, a fixed
``(1, H, W, C)`` float32 signature.

Example:
    >>> from keras_vit.layers import Formulation
    >>> fn = serving_function(model, Formulation(attention="per_head"))    # doctest: +SKIP
"""

INPUT_NAME = "images"
OUTPUT_NAME = "logits"


def input_signature(model):
    """The batch-1 float32 ``TensorSpec`` named ``images`` of ``model``'s input (TensorFlow backend only)."""
    from keras_vit.backend import require_tensorflow

    require_tensorflow("TFLite and ONNX export")
    import tensorflow as tf

    return [tf.TensorSpec((1,) + tuple(model.input_shape[1:]), tf.float32, name=INPUT_NAME)]


def _serve(model, formulation):
    from keras_vit.layers import export_formulation

    def serve(images):
        with export_formulation(formulation):
            return {OUTPUT_NAME: model(images, training=False)}

    return serve


def serving_function(model, formulation):
    """A ``tf.function`` ``images -> {"logits": ...}`` that traces ``model`` in ``formulation``."""
    signature = input_signature(model)
    import tensorflow as tf

    return tf.function(_serve(model, formulation), input_signature=signature)


def write_saved_model(model, directory: str, formulation) -> None:
    """Writes the serving function as a SavedModel (the TFLite converter freezes its variables)."""
    import keras

    signature = input_signature(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", _serve(model, formulation), input_signature=signature)
    archive.write_out(directory, verbose=False)
