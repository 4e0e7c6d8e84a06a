"""The model: config == constructor arguments, .keras round trips, bad input says how to fix it."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit import VisionTransformer


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_config_is_exactly_the_constructor_arguments():
    model = keras_vit.create_model("vit_test", pooling="gap", position_embedding="sincos", representation_size=8)
    config = model.get_config()
    import inspect

    own = set(inspect.signature(VisionTransformer.__init__).parameters) - {"self", "kwargs"}
    assert set(config) == own | {"name", "trainable"}
    clone = VisionTransformer.from_config(config)
    assert clone.get_config() == config
    assert clone.count_params() == model.count_params()


@pytest.mark.parametrize("name", ["vit_test", pytest.param("vit_cifar_patch4_32", marks=pytest.mark.slow)])
def test_keras_file_reloads_without_custom_objects_in_a_fresh_process(name, tmp_path):
    model = keras_vit.create_model(name, drop_path_rate=0.1, dropout_rate=0.1)
    shape = (2,) + tuple(model.input_shape[1:])
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    expected = _np(model(x))
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, keras, keras_vit\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, keras.ops.convert_to_numpy(m(np.load({str(tmp_path / 'x.npy')!r}))))\n"
        "print(type(m).__name__, m.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"VisionTransformer {name}" in out.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


def _all_variants_round_trip(tmp_path, names):
    for name in names:
        model = keras_vit.create_model(name)
        x = np.random.default_rng(0).normal(size=(1,) + tuple(model.input_shape[1:])).astype("float32")
        path = tmp_path / f"{name}.keras"
        model.save(path)
        restored = keras.models.load_model(path)
        np.testing.assert_array_equal(_np(restored(x)), _np(model(x)))
        assert restored.get_config() == model.get_config()
        path.unlink()


def test_small_registered_variants_round_trip(tmp_path):
    _all_variants_round_trip(tmp_path, ["vit_test", "vit_digits_patch2_8", "vit_tiny_patch4_32", "vit_tiny_patch16_224"])


@pytest.mark.slow
def test_tiny_small_and_base_variants_round_trip(tmp_path):
    names = keras_vit.list_models("vit_tiny_*") + keras_vit.list_models("vit_small_*") + ["vit_base_patch16_224"]
    _all_variants_round_trip(tmp_path, [n for n in names if n not in ("vit_tiny_patch4_32", "vit_tiny_patch16_224")])


def test_learned_positions_are_initialised_normal_002_and_class_token_zero():
    model = keras_vit.create_model("vit_tiny_patch16_224", num_classes=10)
    encoder = model.get_layer("patch_encoder")
    assert encoder.position_embeddings.shape == (1, 197, 192)
    std = float(np.std(encoder.position_embeddings.numpy()))
    assert 0.018 < std < 0.022
    np.testing.assert_array_equal(encoder.class_token.numpy(), 0.0)


def test_drop_path_rises_linearly_across_blocks():
    model = keras_vit.create_model("vit_test", num_layers=4, drop_path_rate=0.3)
    rates = [model.get_layer(f"block_{i}").drop_path_rate for i in range(4)]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3], atol=1e-9)


def test_blocks_expose_attention_weights():
    model = keras_vit.create_model("vit_test")
    tokens = model.get_layer("patch_encoder")(model.get_layer("patches")(np.zeros((1, 32, 32, 3), "float32")))
    _, weights = model.get_layer("block_0")(tokens, return_attention_scores=True)
    assert tuple(weights.shape) == (1, 2, 17, 17)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_builds_runs_and_keeps_norms_and_softmax_in_float32(policy):
    model = keras_vit.create_model("vit_test", dtype=policy)
    assert model.get_layer("block_0").dtype_policy.name == policy
    # Large activations overflow a float16 variance; our LayerNorm computes statistics in float32.
    x = np.random.default_rng(0).normal(0.0, 300.0, size=(2, 32, 32, 3)).astype("float32")
    logits = _np(model(x))
    assert np.all(np.isfinite(logits))
    tokens = model.get_layer("patch_encoder")(model.get_layer("patches")(x))
    assert keras.backend.standardize_dtype(tokens.dtype) == policy.split("_")[1]
    block = model.get_layer("block_0")
    # Tokens of std 500: their variance (2.5e5) overflows float16 (max 65504) unless computed in float32.
    wide = keras.ops.cast(np.random.default_rng(1).normal(0.0, 500.0, size=(2, 17, 32)), tokens.dtype)
    normed = _np(block.norm1(wide)).astype("float32")
    assert block.norm1(wide).dtype == tokens.dtype and np.all(np.isfinite(normed))
    np.testing.assert_allclose(normed.std(-1), 1.0, atol=0.05)
    _, weights = block(tokens, return_attention_scores=True)
    np.testing.assert_allclose(_np(weights).astype("float32").sum(-1), 1.0, atol=1e-2)
    reference = keras_vit.create_model("vit_test")
    reference.set_weights([w.astype("float32") for w in model.get_weights()])
    small = x / 300.0
    np.testing.assert_allclose(_np(model(small)).astype("float32"), _np(reference(small)), atol=0.05)


def test_training_on_real_images_lowers_the_loss(cifar10_sample):
    from keras_vit.preprocessing import Preprocessing

    images, labels = cifar10_sample
    x = Preprocessing(image_size=32).normalize(images)
    keras.utils.set_random_seed(0)
    model = keras_vit.create_model("vit_test")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = model.evaluate(x, labels, verbose=0)
    model.fit(x, labels, batch_size=32, epochs=8, shuffle=True, verbose=0)
    after = model.evaluate(x, labels, verbose=0)
    assert after < before - 0.1, (before, after)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"image_size": 30, "patch_size": 8}, r"image_size height 30 is not divisible by patch_size=8\. Use image_size=24"),
        ({"hidden_dim": 30, "num_heads": 4}, r"hidden_dim=30 is not divisible by num_heads=4\. Choose num_heads from"),
        ({"num_layers": 0}, r"num_layers must be a positive integer; received num_layers=0"),
        ({"image_size": (32,)}, r"image_size must be a positive int or \(height, width\)"),
        ({"pooling": "max"}, r"pooling must be one of"),
    ],
)
def test_bad_model_arguments_name_the_argument_value_and_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_vit.create_model("vit_test", **kwargs)


@pytest.mark.parametrize(
    "shape,message",
    [
        ((1, 32, 32, 1), r"1 channel\(s\) instead of 3\. Convert the images"),
        ((32, 32, 3), r"rank 4; received rank 3.*Add a batch axis"),
        ((1, 16, 16, 3), r"received images of 16x16\. Resize them to 32x32"),
    ],
)
def test_wrong_images_at_call_time_say_how_to_fix(shape, message):
    model = keras_vit.create_model("vit_test")
    with pytest.raises(ValueError, match=message):
        model(np.zeros(shape, "float32"))
    if len(shape) == 4:
        with pytest.raises(ValueError, match=message):
            model.predict(np.zeros(shape, "float32"), verbose=0)
