"""The training and export formulations of LayerNorm and GELU are the same math."""

import math

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.layers import LayerNorm, current_formulation, export_formulation, gelu


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_layer_norm_forms_match_keras_layer_normalization_to_1e5():
    x = np.random.default_rng(0).normal(3.0, 5.0, size=(4, 9, 64)).astype("float32")
    ours = LayerNorm(epsilon=1e-6)
    fused = _np(ours(x))
    rng = np.random.default_rng(1)
    ours.set_weights([rng.normal(size=64).astype("float32"), rng.normal(size=64).astype("float32")])
    reference = keras.layers.LayerNormalization(epsilon=1e-6)
    reference.build(x.shape)
    reference.set_weights(ours.get_weights())
    fused = _np(ours(x))
    with export_formulation():
        decomposed = _np(ours(x))
    np.testing.assert_allclose(fused, _np(reference(x)), atol=1e-5)
    np.testing.assert_allclose(decomposed, fused, atol=1e-5)


def test_gelu_forms_match_exact_gelu():
    x = np.linspace(-8, 8, 4001, dtype="float32")
    exact = 0.5 * x.astype("float64") * (1 + np.vectorize(math.erf)(x.astype("float64") / math.sqrt(2)))
    np.testing.assert_allclose(_np(gelu(x)), exact, atol=1e-5)
    with export_formulation(gelu="erf"):
        np.testing.assert_allclose(_np(gelu(x)), exact, atol=1e-5)
    with export_formulation(gelu="tanh"):
        # The tanh approximation's documented gap from exact GELU.
        assert np.max(np.abs(_np(gelu(x)) - exact)) < 5e-4


def test_whole_model_agrees_across_formulations():
    model = keras_vit.create_model("vit_test", representation_size=16)
    x = np.random.default_rng(2).normal(size=(3, 32, 32, 3)).astype("float32")
    training_graph = _np(model(x))
    with export_formulation():
        export_graph = _np(model(x))
    np.testing.assert_allclose(export_graph, training_graph, atol=1e-5)


def test_formulation_is_restored_and_validated():
    assert current_formulation() == {"gelu": "exact", "layer_norm": "fused"}
    with pytest.raises(RuntimeError):
        with export_formulation(gelu="tanh"):
            assert current_formulation()["gelu"] == "tanh"
            raise RuntimeError("boom")
    assert current_formulation()["gelu"] == "exact"
    with pytest.raises(ValueError, match="gelu must be one of"):
        with export_formulation(gelu="relu"):
            pass
