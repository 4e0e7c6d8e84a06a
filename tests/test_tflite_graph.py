"""The export formulations compute the same function as the Keras model (float, no conversion)."""

import numpy as np
import pytest

from keras_vit.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def model_and_images(cifar10_sample):
    import keras

    import keras_vit

    keras.utils.set_random_seed(3)
    model = keras_vit.create_model("vit_test", pooling="token")
    images = Preprocessing(image_size=32).normalize(cifar10_sample[0][:4])
    return model, images


@pytest.mark.parametrize("overrides,reference_gelu,tolerance", [
    ({"attention": "per_head"}, "erf", 1e-5),
    ({"attention": "sliced"}, "erf", 1e-5),
    ({"patch_embedding": "conv"}, "erf", 1e-5),
    ({"layer_norm": "newton"}, "erf", 1e-4),
    ({"gelu": "sigmoid"}, "tanh", 1e-5),  # x*sigmoid(2z) is exactly the tanh approximation
    ({"attention": "per_head", "gelu": "sigmoid", "patch_embedding": "conv"}, "tanh", 1e-5),
])
def test_formulations_match_the_keras_model(model_and_images, overrides, reference_gelu, tolerance):
    import tensorflow as tf

    from keras_vit.layers import export_formulation
    from keras_vit.tflite.graph import Formulation, forward

    model, images = model_and_images
    with export_formulation(gelu=reference_gelu):
        expected = np.concatenate([model(image[None], training=False) for image in images])
    actual = np.concatenate([forward(model, tf.constant(image[None]), Formulation(**overrides)) for image in images])
    np.testing.assert_allclose(actual, expected, atol=tolerance * max(1.0, np.abs(expected).max()))


def test_unknown_formulation_is_refused():
    from keras_vit.tflite.graph import Formulation

    with pytest.raises(ValueError, match="attention must be one of .*received attention='flash'"):
        Formulation(attention="flash")
    with pytest.raises(ValueError, match="gelu must be one of"):
        Formulation(gelu="relu")
