"""Position-embedding resampling: equal to PyTorch's interpolate in every mode; resize_model keeps weights."""

import importlib.util

import numpy as np
import pytest

import keras_vit
from keras_vit.preprocessing import Preprocessing
from keras_vit.factory import resize_model
from keras_vit.weights import export_timm, load_weights, model_weights, resample_position_embeddings


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is in the test extra")
@pytest.mark.parametrize("old, new", [((14, 14), (24, 24)), ((8, 8), (4, 4)), ((7, 5), (3, 9)), ((4, 4), (5, 5))])
@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
@pytest.mark.parametrize("antialias", [True, False])
def test_matches_torch_interpolate(old, new, method, antialias):
    import torch
    import torch.nn.functional as F

    posemb = np.random.default_rng(0).normal(size=(1, 1 + old[0] * old[1], 16)).astype("float32")
    ours = resample_position_embeddings(posemb, new, 1, method, antialias, old_grid=old)
    grid = torch.from_numpy(posemb[:, 1:]).reshape(1, *old, 16).permute(0, 3, 1, 2)
    theirs = F.interpolate(grid, size=new, mode=method, align_corners=False, antialias=antialias)
    theirs = theirs.permute(0, 2, 3, 1).reshape(1, -1, 16).numpy()
    assert ours.shape == (1, 1 + new[0] * new[1], 16)
    np.testing.assert_array_equal(ours[:, :1], posemb[:, :1])  # the class-token row is kept
    assert np.abs(ours[:, 1:] - theirs).max() < 1e-5


def test_same_grid_is_identity_and_bad_input_is_explained():
    posemb = np.random.default_rng(1).normal(size=(1, 17, 8)).astype("float32")
    np.testing.assert_array_equal(resample_position_embeddings(posemb, 4), posemb)
    with pytest.raises(ValueError, match="square"):
        resample_position_embeddings(posemb[:, :15], 4)
    with pytest.raises(ValueError, match="method"):
        resample_position_embeddings(posemb, 4, method="nearest")


def test_resize_model_equals_loading_at_the_new_size(tmp_path, cifar10_sample):
    images, _ = cifar10_sample
    small = keras_vit.create_model("vit_test")
    before = model_weights(small)
    big = resize_model(small, 64)  # bicubic with antialias, timm's default
    assert big.input_shape == (None, 64, 64, 3) and small.input_shape == (None, 32, 32, 3)
    after, resized = model_weights(small), model_weights(big)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the source model is untouched
    assert all(np.array_equal(before[k], resized[k]) for k in before if "position_embeddings" not in k)
    loaded = keras_vit.create_model("vit_test", image_size=64)
    load_weights(loaded, export_timm(small, str(tmp_path / "timm")))  # timm source: bicubic with antialias
    inputs = Preprocessing(64).normalize(np.repeat(np.repeat(images[:8], 2, 1), 2, 2))
    assert np.abs(np.asarray(big(inputs)) - np.asarray(loaded(inputs))).max() <= 1e-5
    # Back to 32: the patch-grid round trip lands on a model of the original shape that still runs.
    assert resize_model(big, 32).predict(Preprocessing(32).normalize(images[:4]), verbose=0).shape == (4, 10)


def test_resize_sincos_model_rebuilds_its_fixed_table():
    small = keras_vit.create_model("vit_test", position_embedding="sincos")
    big = resize_model(small, 64)
    fresh = keras_vit.create_model("vit_test", image_size=64, position_embedding="sincos")
    np.testing.assert_allclose(big.get_layer("patch_encoder").position_embeddings.numpy(),
                               fresh.get_layer("patch_encoder").position_embeddings.numpy())
