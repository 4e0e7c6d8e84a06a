"""Each layer keeps the keras_vit contract and computes what the paper says."""

import keras
import numpy as np
import pytest

from vit_harness import run_layer_test

from keras_vit.layers import (
    ClassificationHead,
    DropPath,
    LayerNorm,
    Mlp,
    MultiHeadSelfAttention,
    PatchEncoder,
    Patches,
    TransformerBlock,
    sincos_2d,
)

LAYER_CASES = [
    (Patches, {"patch_size": 4}, (2, 8, 12, 3), (2, 6, 48)),
    (PatchEncoder, {"hidden_dim": 16}, (2, 4, 48), (2, 5, 16)),
    (PatchEncoder, {"hidden_dim": 16, "position_embedding": "sincos", "grid_size": (2, 3)}, (2, 6, 48), (2, 7, 16)),
    (MultiHeadSelfAttention, {"num_heads": 2, "dropout_rate": 0.1}, (2, 5, 16), (2, 5, 16)),
    (Mlp, {"mlp_dim": 64, "dropout_rate": 0.1}, (2, 5, 16), (2, 5, 16)),
    (TransformerBlock, {"num_heads": 4, "mlp_dim": 64, "drop_path_rate": 0.1}, (2, 5, 16), (2, 5, 16)),
    (ClassificationHead, {"num_classes": 7}, (2, 5, 16), (2, 7)),
    (ClassificationHead, {"num_classes": 7, "pooling": "gap", "representation_size": 32}, (2, 5, 16), (2, 7)),
    (LayerNorm, {"epsilon": 1e-6}, (2, 5, 16), (2, 5, 16)),
    (DropPath, {"rate": 0.2, "seed": 1}, (4, 5, 16), (4, 5, 16)),
]


@pytest.mark.parametrize("cls,kwargs,input_shape,output_shape", LAYER_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_layer_contract(cls, kwargs, input_shape, output_shape):
    run_layer_test(cls, kwargs, input_shape, output_shape)


def test_patches_are_row_major_and_flattened_row_col_channel():
    image = np.arange(4 * 6 * 2, dtype="float32").reshape(1, 4, 6, 2)
    patches = keras.ops.convert_to_numpy(Patches(2)(image))
    # Patch 1 is the second patch of the first row: rows 0-1, columns 2-3.
    np.testing.assert_array_equal(patches[0, 1], image[0, 0:2, 2:4, :].reshape(-1))
    # Patch 3 starts the second row of patches.
    np.testing.assert_array_equal(patches[0, 3], image[0, 2:4, 0:2, :].reshape(-1))


def test_dense_on_patches_equals_strided_conv():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    encoder = PatchEncoder(hidden_dim=24)
    encoder(Patches(8)(images))
    kernel, bias = encoder.projection.get_weights()
    conv = keras.layers.Conv2D(24, 8, strides=8)
    conv.build(images.shape)
    conv.set_weights([kernel.reshape(8, 8, 3, 24), bias])
    via_conv = keras.ops.convert_to_numpy(conv(images)).reshape(2, 16, 24)
    via_dense = keras.ops.convert_to_numpy(encoder.projection(Patches(8)(images)))
    np.testing.assert_allclose(via_dense, via_conv, atol=1e-5)


def test_patch_encoder_prepends_class_token_and_adds_positions():
    encoder = PatchEncoder(hidden_dim=8)
    patches = np.zeros((3, 4, 12), "float32")
    tokens = keras.ops.convert_to_numpy(encoder(patches))
    assert encoder.position_embeddings.shape == (1, 5, 8)
    assert abs(float(np.std(encoder.position_embeddings.numpy())) - 0.02) < 0.015
    encoder.class_token.assign(np.full((1, 1, 8), 3.0, "float32"))
    tokens = keras.ops.convert_to_numpy(encoder(patches))
    pos = encoder.position_embeddings.numpy()[0]
    bias = encoder.projection.bias.numpy()
    np.testing.assert_allclose(tokens[:, 0], np.broadcast_to(3.0 + pos[0], (3, 8)), atol=1e-6)
    np.testing.assert_allclose(tokens[:, 1:], np.broadcast_to(bias + pos[1:], (3, 4, 8)), atol=1e-6)


def test_sincos_position_embedding_is_fixed_and_zero_for_class_token():
    encoder = PatchEncoder(hidden_dim=16, position_embedding="sincos")
    encoder(np.zeros((1, 9, 12), "float32"))
    table = encoder.position_embeddings.numpy()[0]
    assert not encoder.position_embeddings.trainable
    np.testing.assert_array_equal(table[0], 0.0)
    np.testing.assert_allclose(table[1:], sincos_2d(3, 3, 16), atol=1e-7)
    # Row 0 of the grid has y = 0: sin(y) channels are 0, cos(y) channels are 1.
    np.testing.assert_allclose(table[1, :4], 0.0, atol=1e-7)
    np.testing.assert_allclose(table[1, 4:8], 1.0, atol=1e-7)


def test_attention_matches_a_reference_computation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    layer = MultiHeadSelfAttention(num_heads=2)
    out, weights = layer(x, return_attention_scores=True)
    w_qkv, b_qkv = layer.qkv.get_weights()
    w_o, b_o = layer.proj.get_weights()
    qkv = (x @ w_qkv + b_qkv).reshape(2, 5, 3, 2, 4).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv
    s = q @ k.transpose(0, 1, 3, 2) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ref = (p @ v).transpose(0, 2, 1, 3).reshape(2, 5, 8) @ w_o + b_o
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights), p, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), ref, atol=1e-5)


def test_transformer_block_is_pre_norm_residual_and_returns_attention():
    x = np.random.default_rng(2).normal(size=(2, 5, 16)).astype("float32")
    block = TransformerBlock(num_heads=4, mlp_dim=64)
    out, weights = block(x, return_attention_scores=True)
    assert tuple(weights.shape) == (2, 4, 5, 5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights).sum(-1), 1.0, atol=1e-5)
    h = x + keras.ops.convert_to_numpy(block.attention(block.norm1(x)))
    ref = h + keras.ops.convert_to_numpy(block.mlp(block.norm2(h)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), ref, atol=1e-5)


def test_drop_path_drops_whole_samples_only_in_training():
    x = np.ones((400, 3, 4), "float32")
    layer = DropPath(0.25, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = y.reshape(400, -1)
    np.testing.assert_allclose(sorted(set(np.unique(per_sample))), [0.0, 1.0 / 0.75], rtol=1e-6)
    assert np.all(per_sample.min(1) == per_sample.max(1))  # all-or-nothing per sample
    assert 0.15 < np.mean(per_sample[:, 0] == 0) < 0.35


def test_head_pools_token_or_mean_of_patch_tokens():
    x = np.random.default_rng(3).normal(size=(2, 5, 16)).astype("float32")
    for pooling, pick in (("token", lambda t: t[:, 0]), ("gap", lambda t: t[:, 1:].mean(1))):
        head = ClassificationHead(num_classes=0, pooling=pooling)
        out = keras.ops.convert_to_numpy(head(x))
        normed = keras.ops.convert_to_numpy(head.norm(x))
        np.testing.assert_allclose(out, pick(normed), atol=1e-6)


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: Patches(0), "patch_size must be a positive integer"),
        (lambda: Patches(5)(np.zeros((1, 32, 32, 3), "float32")), "not divisible by patch_size=5"),
        (lambda: Patches(4)(np.zeros((32, 32, 3), "float32")), "rank 4"),
        (lambda: PatchEncoder(16, position_embedding="rope"), "position_embedding must be one of"),
        (lambda: MultiHeadSelfAttention(5)(np.zeros((1, 3, 16), "float32")), "not divisible by num_heads=5"),
        (lambda: ClassificationHead(10, pooling="max"), "pooling must be one of"),
        (lambda: LayerNorm(epsilon=0), "epsilon must be > 0"),
        (lambda: DropPath(1.0), "rate must be in"),
    ],
)
def test_bad_layer_arguments_say_what_and_how_to_fix(build, message):
    with pytest.raises(ValueError, match=message):
        build()
