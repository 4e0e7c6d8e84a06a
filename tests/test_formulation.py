"""The training and export formulations of each layer are the same math, chosen by one Formulation."""

import math

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.layers import Formulation, LayerNorm, current_formulation, export_formulation, gelu
from keras_vit.layers.formulation import EXPORT, TRAINING


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_layer_norm_forms_match_keras_layer_normalization_to_1e5():
    x = np.random.default_rng(0).normal(3.0, 5.0, size=(4, 9, 64)).astype("float32")
    ours = LayerNorm(epsilon=1e-6)
    ours(x)
    rng = np.random.default_rng(1)
    ours.set_weights([rng.normal(size=64).astype("float32"), rng.normal(size=64).astype("float32")])
    reference = keras.layers.LayerNormalization(epsilon=1e-6)
    reference.build(x.shape)
    reference.set_weights(ours.get_weights())
    fused = _np(ours(x))
    np.testing.assert_allclose(fused, _np(reference(x)), atol=1e-5)
    for form in ("decomposed", "newton"):
        with export_formulation(layer_norm=form):
            np.testing.assert_allclose(_np(ours(x)), fused, atol=1e-5, err_msg=form)


def test_gelu_forms_match_exact_gelu():
    x = np.linspace(-8, 8, 4001, dtype="float32")
    exact = 0.5 * x.astype("float64") * (1 + np.vectorize(math.erf)(x.astype("float64") / math.sqrt(2)))
    np.testing.assert_allclose(_np(gelu(x)), exact, atol=1e-5)
    with export_formulation(gelu="erf"):
        np.testing.assert_allclose(_np(gelu(x)), exact, atol=1e-5)
    with export_formulation(gelu="tanh"):
        tanh = _np(gelu(x))
    assert np.max(np.abs(tanh - exact)) < 5e-4  # the tanh approximation's documented gap from exact GELU
    with export_formulation(gelu="sigmoid"):
        np.testing.assert_allclose(_np(gelu(x)), tanh, atol=1e-6)  # 0.5 (1 + tanh z) = sigmoid(2 z)


def test_whole_model_agrees_across_formulations():
    model = keras_vit.create_model("vit_test", representation_size=16, representation_activation="tanh")
    x = np.random.default_rng(2).normal(size=(3, 32, 32, 3)).astype("float32")
    training_graph = _np(model(x))
    with export_formulation():
        export_graph = _np(model(x))
    np.testing.assert_allclose(export_graph, training_graph, atol=1e-5)


def test_export_formulation_takes_a_formulation_or_keywords_and_restores_the_previous_one():
    assert current_formulation() == TRAINING
    with export_formulation() as chosen:
        assert chosen == EXPORT == current_formulation()
        assert (EXPORT.gelu, EXPORT.layer_norm, EXPORT.attention, EXPORT.patch_embedding) == (
            "erf", "decomposed", "batch_matmul", "dense")
        with export_formulation(Formulation(attention="per_head"), gelu="sigmoid"):
            assert current_formulation() == Formulation(attention="per_head", gelu="sigmoid")
        assert current_formulation() == EXPORT
    with pytest.raises(RuntimeError):
        with export_formulation(gelu="tanh"):
            assert current_formulation().gelu == "tanh"
            raise RuntimeError("boom")
    assert current_formulation() == TRAINING


@pytest.mark.parametrize("make,error,message", [
    (lambda: Formulation(gelu="relu"), ValueError, r"gelu must be one of .*received gelu='relu'"),
    (lambda: Formulation(attention="sliced"), ValueError, r"attention must be one of \('batch_matmul', .*'auto'\)"),
    (lambda: Formulation(layer_norm="rms"), ValueError, "layer_norm must be one of"),
    (lambda: Formulation(patch_embedding="linear"), ValueError, "patch_embedding must be one of"),
    (lambda: export_formulation(gelu="relu").__enter__(), ValueError, "gelu must be one of"),
    (lambda: export_formulation(unfold_batchmatmul=True).__enter__(), TypeError, "Unknown formulation fields"),
    (lambda: export_formulation({"gelu": "erf"}).__enter__(), TypeError, "must be a keras_vit.layers.Formulation"),
])
def test_bad_formulations_are_refused_with_the_choices(make, error, message):
    with pytest.raises(error, match=message):
        make()
    assert current_formulation() == TRAINING


def test_per_head_attention_needs_batch_1():
    model = keras_vit.create_model("vit_test")
    with export_formulation(attention="per_head"), pytest.raises(ValueError, match="batch 1"):
        model(np.zeros((2, 32, 32, 3), "float32"))


def test_head_pool_is_the_pre_logits_features():
    model = keras_vit.create_model("vit_test", representation_size=16, representation_activation="tanh")
    head = model.get_layer("head")
    tokens = np.random.default_rng(3).normal(size=(2, 17, 32)).astype("float32")
    features = _np(head.pool(head.norm(tokens)))
    assert features.shape == (2, 16) and np.abs(features).max() <= 1.0  # tanh's range
    np.testing.assert_allclose(_np(head(tokens)), _np(head.classify(features)), atol=1e-6)
