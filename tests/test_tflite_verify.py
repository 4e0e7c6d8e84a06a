"""Flex ops: the export names them and fails; the verifier names them in a file that has them."""

import os

import pytest
from conftest import run_python


@pytest.mark.slow
def test_flex_ops_fail_the_export_and_the_verifier(tmp_path):
    flex_path = str(tmp_path / "flex.tflite")
    code = f"""
import keras, tensorflow as tf
from keras_vit.tflite.convert import ExportError, export_tflite

class CumProd(keras.layers.Layer):   # tf.math.cumprod has no TFLite builtin kernel
    def call(self, x):
        return tf.math.cumprod(x, axis=-1)

inputs = keras.Input((32, 32, 3), name="images")
outputs = keras.layers.Dense(10)(keras.layers.Flatten()(CumProd()(inputs)))
model = keras.Model(inputs, outputs)
try:
    export_tflite(model, {str(tmp_path / "m.tflite")!r}, mode="float32")
except ExportError as error:
    print("EXPORT ERROR:", error)
# The same model converted with Flex allowed, as Keras' own export does by default:
converter = tf.lite.TFLiteConverter.from_concrete_functions(
    [tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec((1, 32, 32, 3)))], model)
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
open({flex_path!r}, "wb").write(converter.convert())
"""
    out = run_python(code)
    assert "EXPORT ERROR:" in out and "tf.Cumprod" in out and "Flex" in out
    assert not os.path.exists(tmp_path / "m.tflite")  # nothing written on failure

    from keras_vit.tflite.inspection import inspect_file
    from keras_vit.tflite.verify import verify_tflite

    assert inspect_file(flex_path).flex_ops() == ["FlexCumprod"]
    report = verify_tflite(flex_path)
    assert not report.ok
    assert "FlexCumprod" in report.failures()[0].detail
    with pytest.raises(ValueError, match="cannot load"):
        from keras_vit.tflite.runtime import LiteRTModel

        LiteRTModel(flex_path)
