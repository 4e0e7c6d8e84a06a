"""A shared harness: each layer test is a few lines of data (after KerasHub's run_layer_test)."""

import inspect

import keras
import numpy as np


def run_layer_test(cls, init_kwargs, input_shape, expected_output_shape, seed=0):
    """Builds ``cls(**init_kwargs)`` and checks the contract every keras_vit layer keeps.

    * registered as ``keras_vit>ClassName`` and found by Keras' deserializer;
    * ``get_config()`` holds exactly the constructor arguments (plus Keras' base keys);
    * ``from_config(get_config())`` with the same weights gives identical outputs;
    * ``compute_output_shape`` agrees with what ``call`` returns.
    """
    assert keras.saving.get_registered_name(cls) == f"keras_vit>{cls.__name__}"
    x = np.random.default_rng(seed).normal(size=input_shape).astype("float32")
    layer = cls(**init_kwargs)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == tuple(expected_output_shape)
    assert tuple(layer.compute_output_shape(input_shape)) == tuple(expected_output_shape)

    config = layer.get_config()
    own = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    base = set(keras.layers.Layer().get_config())
    assert set(config) - base == own, f"get_config keys {sorted(set(config) - base)} != args {sorted(own)}"
    for key, value in init_kwargs.items():
        assert config[key] == value or (isinstance(value, list) and tuple(value) == config[key])

    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls
    restored(x)  # build
    restored.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(x)), y)
    return layer, y
