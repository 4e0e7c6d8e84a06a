"""Every formulation, traced through the model's own call, computes the Keras training graph's function."""

import numpy as np
import pytest

from keras_vit.layers.formulation import Formulation
from keras_vit.preprocessing import Preprocessing
from keras_vit.tflite.modes import MODES


@pytest.fixture(scope="module")
def model_and_images(cifar10_sample):
    import keras

    import keras_vit

    keras.utils.set_random_seed(3)
    # The tanh pre-logits head of the original ViT checkpoints: each formulation must keep it.
    model = keras_vit.create_model("vit_test", representation_size=16, representation_activation="tanh")
    images = Preprocessing(image_size=32).normalize(cifar10_sample[0][:4])
    return model, images


def _reference(model, images, gelu):
    """The training graph; for the tanh-approximated GELU forms, the same graph with that approximation."""
    from keras_vit.layers import export_formulation
    from keras_vit.layers.formulation import TRAINING

    with export_formulation(TRAINING, gelu="tanh" if gelu in ("tanh", "sigmoid") else "exact"):
        return np.asarray(model(images, training=False))


FORMULATIONS = [
    Formulation(**{field: value}) for field, values in (
        ("attention", ("batch_matmul", "per_head", "broadcast")), ("gelu", ("exact", "erf", "tanh", "sigmoid")),
        ("layer_norm", ("fused", "decomposed", "newton")), ("patch_embedding", ("dense", "conv")))
    for value in values
] + [Formulation(attention="per_head", gelu="sigmoid", layer_norm="newton", patch_embedding="conv"),
      Formulation(attention="broadcast", gelu="sigmoid", layer_norm="decomposed", patch_embedding="conv")]


@pytest.mark.parametrize("formulation", FORMULATIONS, ids=lambda f: ",".join(map(str, vars(f).values())))
def test_formulation_matches_the_training_graph(model_and_images, formulation):
    from keras_vit.layers import export_formulation

    model, images = model_and_images
    expected = _reference(model, images, formulation.gelu)
    with export_formulation(formulation):
        actual = np.concatenate([model(image[None], training=False) for image in images])  # per_head: batch 1
    np.testing.assert_allclose(actual, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_modes_serving_function_traces_the_model_call(model_and_images, mode):
    import tensorflow as tf

    from keras_vit.tflite.graph import serving_function

    model, images = model_and_images
    serve = serving_function(model, MODES[mode].formulation)
    actual = np.concatenate([serve(tf.constant(image[None]))["logits"] for image in images])
    expected = _reference(model, images, MODES[mode].formulation.gelu)
    np.testing.assert_allclose(actual, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))


def test_modes_carry_the_formulations_their_graphs_were_measured_with():
    float_modes = ("float32", "float16", "dynamic", "int8", "int8_cpu", "uint8")
    assert {MODES[m].formulation for m in float_modes} == {Formulation(gelu="erf", layer_norm="decomposed")}
    assert [m for m in MODES if MODES[m].converter.unfold_batchmatmul] == ["int8", "uint8"]
    assert MODES["int16x8"].formulation.layer_norm == "newton"
    assert MODES["edgetpu"].formulation == Formulation(attention="per_head", gelu="sigmoid", layer_norm="decomposed",
                                                       patch_embedding="conv")


def test_pixel_input_and_probabilities_are_the_model_on_normalized_images_then_softmax(model_and_images):
    import tensorflow as tf

    from keras_vit.tflite.graph import serving_function
    from keras_vit.tflite.runtime import softmax, to_pixels

    model, images = model_and_images
    contract = Preprocessing(image_size=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    serve = serving_function(model, MODES["float32"].formulation, "probabilities", pixels=contract)
    pixels = to_pixels(images, Preprocessing(image_size=32))  # the 0-255 pixels the images came from
    actual = np.concatenate([serve(tf.constant(p[None]))["probabilities"] for p in pixels])
    expected = softmax(np.asarray(model(contract.normalize(pixels), training=False)))
    np.testing.assert_allclose(actual, expected, atol=1e-5)
