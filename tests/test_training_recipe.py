"""Recipe pieces: decay exclusions, warmup-cosine, LR scaling, strategy choice, batch split, precision."""

import types

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import keras_vit  # noqa: E402
from keras_vit.training import recipe, strategy  # noqa: E402
from keras_vit.training.loop import Trainer  # noqa: E402


def test_no_decay_set_is_biases_norms_and_embeddings():
    model = keras_vit.create_model("vit_test")
    names = {v.path for v in recipe.no_decay_variables(model)}
    assert "patch_encoder/class_token" in names and "patch_encoder/position_embeddings" in names
    assert "block_0/norm1/gamma" in names and "block_1/mlp/fc2/bias" in names and "head/norm/beta" in names
    assert not any(n.endswith("kernel") for n in names)


def test_adamw_decays_kernels_only():
    model = keras_vit.create_model("vit_test")
    optimizer = recipe.make_optimizer(model, learning_rate=0.1, weight_decay=0.5)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    optimizer.apply([tf.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    skip = {v.path for v in recipe.no_decay_variables(model)}
    for v in model.trainable_variables:
        if v.path in skip:
            np.testing.assert_array_equal(v.numpy(), before[v.path])
        else:  # decoupled decay: w <- w * (1 - lr * wd)
            np.testing.assert_allclose(v.numpy(), before[v.path] * (1 - 0.1 * 0.5), rtol=1e-6)


def _recipe_schedule(step, peak, warmup, total, end):
    """The recipe in closed form: linear 0 -> peak over warmup, then cosine peak -> end at total."""
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return end + 0.5 * (peak - end) * (1 + np.cos(np.pi * progress))


@pytest.mark.parametrize("peak, warmup, total, end", [(1e-3, 10, 110, 1e-5), (3e-4, 0, 50, 0.0), (1e-2, 7, 7, 1e-4)])
def test_warmup_cosine_is_the_recipe_schedule(peak, warmup, total, end):
    schedule = recipe.warmup_cosine(peak, warmup_steps=warmup, total_steps=total, end=end)
    steps = sorted({0, 1, warmup // 2, max(warmup - 1, 0), warmup, warmup + 1, (warmup + total) // 2, total - 1,
                    total, total + 1, 10 * total})
    np.testing.assert_allclose([float(schedule(t)) for t in steps],
                               [_recipe_schedule(t, peak, warmup, total, end) for t in steps], rtol=1e-5, atol=1e-9)
    assert float(schedule(0)) == (0.0 if warmup else pytest.approx(peak))
    last = max(total, warmup + 1)  # a run no longer than its warmup still decays, over one step
    assert float(schedule(last)) == pytest.approx(end, abs=1e-9)  # the floor at the last step, and after it


def test_warmup_cosine_survives_a_saved_optimizer(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(recipe.warmup_cosine(1e-3, 10, 110, 1e-5)), loss="mse")
    model.save(tmp_path / "m.keras")
    saved = keras.models.load_model(tmp_path / "m.keras").optimizer.get_config()["learning_rate"]
    assert saved["class_name"] == "CosineDecay"  # a Keras class: loading needs no custom object
    restored = keras.optimizers.schedules.deserialize(saved)
    original = recipe.warmup_cosine(1e-3, 10, 110, 1e-5)
    for step in (0, 5, 10, 60, 110, 500):
        assert float(restored(step)) == pytest.approx(float(original(step)), abs=1e-12)


def test_lr_scaling():
    assert recipe.scaled_learning_rate(1e-3, 1024, 512) == 2e-3
    assert recipe.scaled_learning_rate(1e-3, 2048, 512, "sqrt") == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="lr_scaling must be one of"):
        recipe.scaled_learning_rate(1e-3, 128, 512, "cubic")


def test_label_smoothing_loss():
    labels = np.eye(4, dtype="float32")[[0, 2]]
    logits = np.log(np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]], "float32"))
    plain = recipe.per_example_loss(labels, logits).numpy()
    np.testing.assert_allclose(plain, [-np.log(0.7), -np.log(0.25)], rtol=1e-5)
    smoothed = recipe.per_example_loss(labels, logits, 0.4).numpy()
    expected = -(0.7 * np.log(0.7) + 0.3 * np.log(0.1))  # 1 - 0.4 + 0.1 on the true class, 0.1 elsewhere
    np.testing.assert_allclose(smoothed[0], expected, rtol=1e-5)


def test_strategy_choice_and_batch_split(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    chosen = strategy.get_strategy("auto")
    assert isinstance(chosen, tf.distribute.OneDeviceStrategy) and strategy.is_chief(chosen)
    with pytest.raises(ValueError, match="strategy must be one of"):
        strategy.get_strategy("horovod")
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        strategy.get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}')
    assert strategy._auto(tf, "") == "multi_worker"
    three = types.SimpleNamespace(num_replicas_in_sync=3)
    assert strategy.split_batch(96, three) == 32
    with pytest.raises(ValueError, match=r"batch_size=100 \(global\) is not divisible by the 3 replicas.*99 or 102"):
        strategy.split_batch(100, three)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "float32"])
def test_train_step_runs_in_each_precision(precision, cifar10_sample):
    images, labels = cifar10_sample
    chosen = tf.distribute.OneDeviceStrategy("/cpu:0")
    with chosen.scope():
        model = keras_vit.create_model("vit_test", dtype=None if precision == "float32" else precision)
        optimizer = recipe.make_optimizer(model, 1e-3)
    trainer = Trainer(model, optimizer, chosen, global_batch_size=32, label_smoothing=0.1, clip_norm=1.0)
    x = (images[:32].astype("float32") / 255 - 0.5) / 0.5
    y = np.eye(10, dtype="float32")[labels[:32]]
    iterator = iter(chosen.experimental_distribute_dataset(tf.data.Dataset.from_tensors((x, y)).repeat()))
    losses = [float(trainer.train_step(iterator)["loss"]) for _ in range(8)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]  # it learns the fixed batch
    assert model.layers[-1].compute_dtype == ("bfloat16" if precision != "float32" else "float32")


def test_resolve_precision():
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert recipe.resolve_precision("mixed", one) == "mixed_bfloat16"  # CPU: bfloat16, no loss scaling
    assert recipe.resolve_precision("float32", one) == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        recipe.resolve_precision("int8", one)
