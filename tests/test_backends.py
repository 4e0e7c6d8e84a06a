"""The model on every Keras 3 backend, fused attention beside the explicit form, mixed precision's one step.

The subprocess tests run another backend (``KERAS_BACKEND=jax`` / ``torch``) where its package is installed
here; the rest run on the backend of this process (TensorFlow by default, JAX in ``.ci/jax_backend.sh``).
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.backend import TensorFlowOnlyError, mixed_policy, require_tensorflow
from keras_vit.layers import MultiHeadSelfAttention, export_formulation

# Builds, fits a step, loads weights and explains without importing TensorFlow; then, with TensorFlow made
# unimportable (the GPU image has none; Keras' own save imports it wherever it is installed), saves, reloads
# and checks that the TensorFlow-only parts say so.
WITHOUT_TENSORFLOW = r"""
import os, sys
import numpy as np, keras, keras_vit
from keras_vit import explain
from keras_vit.backend import TensorFlowOnlyError

assert keras.backend.backend() == os.environ["KERAS_BACKEND"], keras.backend.backend()
folder = sys.argv[1]
model = keras_vit.create_model("vit_test", class_names=list("abcdefghij"))
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
history = model.fit(x, np.arange(4), batch_size=4, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][0])
checkpoint = keras_vit.weights.export_timm(model, os.path.join(folder, "timm"))
fresh = keras_vit.create_model("vit_test")
keras_vit.weights.load_weights(fresh, checkpoint)
np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
pixels = np.random.default_rng(1).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
assert explain.attention_rollout(model, pixels).shape == (2, 4, 4)
assert explain.position_embedding_similarity(model).shape == (4, 4, 4, 4)
assert "tensorflow" not in sys.modules, "tensorflow was imported"
sys.modules["tensorflow"] = None  # from here on `import tensorflow` raises ImportError
model.save(os.path.join(folder, "model.keras"))
again = keras_vit.load_model(os.path.join(folder, "model.keras"))
assert again.class_names == list("abcdefghij")
np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
from keras_vit.layers.formulation import EXPORT
from keras_vit.tflite.graph import serving_function
from keras_vit.training.strategy import get_strategy
for call in (lambda: serving_function(model, EXPORT), lambda: get_strategy("auto")):
    try:
        call()
        raise AssertionError("a TensorFlow-only part ran on " + keras.backend.backend())
    except TensorFlowOnlyError as error:
        assert "needs Keras' TensorFlow backend" in str(error), error
print("ok", keras.backend.backend())
"""

# Two host devices: DataParallel replicates the variables and splits each batch between them.
DATA_PARALLEL = r"""
import jax, numpy as np, keras, keras_vit
assert len(jax.devices()) == 2, jax.devices()
keras.distribution.set_distribution(keras.distribution.DataParallel())
model = keras_vit.create_model("vit_test")
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
loss = model.fit(x, np.arange(4), batch_size=4, epochs=1, verbose=0).history["loss"][0]
kernel = model.get_layer("block_0").attention.qkv.kernel.value
assert len(kernel.sharding.device_set) == 2 and np.isfinite(loss), (kernel.sharding, loss)
print("ok", len(jax.devices()))
"""


def _installed(module):
    return importlib.util.find_spec(module) is not None


def _run(code, backend, *args, env=None):
    full_env = {**os.environ, "KERAS_BACKEND": backend, **(env or {})}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                         timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_model_runs_on_the_backend_without_importing_tensorflow(backend, tmp_path):
    if not _installed(backend):
        pytest.skip(f"{backend} is not installed in this environment")
    assert f"ok {backend}" in _run(WITHOUT_TENSORFLOW, backend, str(tmp_path))


def test_data_parallel_over_two_cpu_devices_fits_a_step_on_jax():
    if not _installed("jax"):
        pytest.skip("jax is not installed in this environment")
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    assert "ok 2" in _run(DATA_PARALLEL, "jax", env={"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})


def test_tensorflow_only_parts_name_the_backend_and_the_way_out(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(TensorFlowOnlyError, match=r"TFLite export needs Keras' TensorFlow backend; .* on 'jax'"):
        require_tensorflow("TFLite export")
    assert issubclass(TensorFlowOnlyError, ValueError)  # the command line prints it as one error line


@pytest.mark.parametrize("device, policy", [
    (("cpu", None), "mixed_bfloat16"), (("tpu", None), "mixed_bfloat16"), (("gpu", 9.0), "mixed_bfloat16"),
    (("gpu", 8.0), "mixed_bfloat16"), (("gpu", 7.5), "mixed_float16"), (("gpu", None), "mixed_float16"),
])
def test_mixed_policy_is_bfloat16_where_the_device_has_it(monkeypatch, device, policy):
    monkeypatch.setattr("keras_vit.backend.accelerator", lambda: device)
    assert mixed_policy() == policy


def _np(x):
    return keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))


def _attention(dtype=None, dropout_rate=0.0):
    keras.utils.set_random_seed(1)
    layer = MultiHeadSelfAttention(num_heads=4, dropout_rate=dropout_rate, dtype=dtype)
    layer.build((2, 65, 64))
    return layer


TOKENS = np.random.default_rng(0).normal(size=(2, 65, 64)).astype("float32")
# Largest |fused - explicit| measured on the CPU (TF / JAX / torch): float32 0 / 0 / 1.8e-7, bfloat16
# 6.8e-3 / 2.0e-3 / 2.0e-3, float16 6.1e-4 / 2.4e-4 / 2.4e-4 (outputs ~0.5: a bfloat16 ulp there is 2e-3).
TOLERANCES = {"float32": 1e-5, "mixed_bfloat16": 1.6e-2, "mixed_float16": 2e-3}


@pytest.mark.parametrize("policy", sorted(TOLERANCES))
def test_fused_attention_agrees_with_the_explicit_form(policy):
    layer = _attention(None if policy == "float32" else policy)
    with export_formulation(attention="batch_matmul"):
        explicit = _np(layer(TOKENS))
    with export_formulation(attention="fused"):
        fused = _np(layer(TOKENS))
    np.testing.assert_allclose(fused, explicit, atol=TOLERANCES[policy])


def test_the_fused_kernel_is_traced_only_where_it_computes_the_same(monkeypatch):
    calls = []
    fused_kernel = keras.ops.dot_product_attention
    monkeypatch.setattr(keras.ops, "dot_product_attention", lambda *a, **k: calls.append(1) or fused_kernel(*a, **k))
    layer, dropout = _attention(), _attention(dropout_rate=0.1)
    with export_formulation(attention="fused"):
        layer(TOKENS, training=True)
        dropout(TOKENS, training=False)  # attention dropout is off outside training
        assert len(calls) == 2
        layer(TOKENS, return_attention_scores=True)
        dropout(TOKENS, training=True)
    with export_formulation():
        layer(TOKENS)
    assert len(calls) == 2  # attention weights, active attention dropout and the export forms stay explicit
    monkeypatch.setattr("keras_vit.layers.attention._fused_by_default", lambda: True)  # a GPU or TPU
    layer(TOKENS, training=True)
    assert len(calls) == 3  # training's "auto" takes the kernel there ...
    monkeypatch.setattr("keras_vit.layers.attention._fused_by_default", lambda: False)
    layer(TOKENS, training=True)
    assert len(calls) == 3  # ... and the explicit form on CPUs


def _one_step(policy, weights, x, y, form="auto"):
    """Loss and weights after one applied SGD step of ``vit_test`` in ``policy`` from float32 ``weights``."""
    model = keras_vit.create_model("vit_test", dtype=None if policy == "float32" else policy)
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    with export_formulation(attention=form):
        for _ in range(8):
            scale = float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)) if policy == "mixed_float16" else 0
            loss = float(model.train_on_batch(x, y))
            if policy != "mixed_float16" or float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)) >= scale:
                break
            # Dynamic loss scaling: gradients that overflowed float16 skip the step and halve the scale.
            assert all(np.array_equal(w, s) for w, s in zip(model.get_weights(), weights)), "a skipped step moved"
    return model, loss, [np.asarray(w, "float32") for w in model.get_weights()]


@pytest.fixture(scope="module")
def float32_step():
    keras.utils.set_random_seed(4)
    start = keras_vit.create_model("vit_test").get_weights()
    x = np.random.default_rng(5).normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 10
    _, loss, after = _one_step("float32", start, x, y)
    return start, x, y, loss, after


def _update_error(start, after, reference):
    """``|update - reference update| / |reference update|`` over all weights (the SGD step's relative error)."""
    delta = np.concatenate([(a - s).ravel() for s, a in zip(start, after)])
    expected = np.concatenate([(r - s).ravel() for s, r in zip(start, reference)])
    return np.linalg.norm(delta - expected) / np.linalg.norm(expected)


def test_one_training_step_is_the_same_in_both_attention_forms(float32_step):
    start, x, y, _, _ = float32_step
    _, fused_loss, fused = _one_step("float32", start, x, y, form="fused")
    _, explicit_loss, explicit = _one_step("float32", start, x, y, form="batch_matmul")
    assert abs(explicit_loss - fused_loss) < 1e-5 and _update_error(start, fused, explicit) < 1e-5


# (relative loss error, relative update error) of one step against float32; the largest measured on the CPU
# over TF / JAX / torch: bfloat16 (2.3e-3, 2.1e-2), float16 (1.3e-4, 2.5e-3).
STEP_TOLERANCES = {"mixed_bfloat16": (0.01, 0.06), "mixed_float16": (1e-3, 0.01)}


@pytest.mark.parametrize("policy", sorted(STEP_TOLERANCES))
def test_one_mixed_precision_step_stays_close_to_float32(float32_step, policy):
    start, x, y, loss, after = float32_step
    model, mixed_loss, mixed = _one_step(policy, start, x, y)
    loss_tolerance, update_tolerance = STEP_TOLERANCES[policy]
    if policy == "mixed_float16":  # compile adds dynamic loss scaling; a skipped (overflowed) step would show
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert abs(mixed_loss - loss) < loss_tolerance * abs(loss), (mixed_loss, loss)
    assert _update_error(start, mixed, after) < update_tolerance
    assert all(w.dtype == "float32" for w in model.weights)  # variables stay float32 under both policies
