"""The run's callbacks in plain ``model.fit``: the budget's learning rate follows the clock to its floor on a
machine that slows down, the guard stops a diverging fit, the preemption backup refuses non-finite weights;
and no function in training/ takes more than 8 parameters."""

import ast
import os
import time

import keras
import numpy as np
import pytest

from keras_vit.training import NonFiniteGuard, Preemption, TimeBudget, recipe_for
from keras_vit.training.faults import Diverged

TRAINING = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "training")
MAX_PARAMETERS = 8


def test_no_function_in_training_takes_more_than_8_parameters():
    too_many = []
    for name in sorted(os.listdir(TRAINING)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(TRAINING, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                count = len([n for n in names if n not in ("self", "cls")])
                if count > MAX_PARAMETERS:
                    too_many.append(f"{name}:{node.lineno} {getattr(node, 'name', 'lambda')} ({count})")
    assert not too_many, too_many


class _SlowDown(keras.callbacks.Callback):
    """Sleeps after each step, three times longer from ``after_s`` on: a machine that gets busy mid-run."""

    def __init__(self, sleep_s, after_s):
        super().__init__()
        self.sleep_s, self.after_s, self.start = sleep_s, after_s, None

    def on_train_batch_end(self, batch, logs=None):
        self.start = self.start or time.time()
        time.sleep(self.sleep_s * (3 if time.time() - self.start > self.after_s else 1))


class _Rates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate.numpy()))


def _digits_model():
    import keras_vit

    keras.utils.set_random_seed(0)
    return keras_vit.create_model("vit_test", image_size=8, patch_size=4, channels=1, num_classes=10)


def test_time_budget_ends_at_its_floor_on_a_machine_that_slows_down(tmp_path):
    model = _digits_model()
    model.compile(**recipe_for(model, learning_rate=1e-3))
    budget = TimeBudget(minutes=0.2, peak=1e-3, floor=1e-5, warmup_steps=5, directory=str(tmp_path))
    rates = _Rates()
    started = time.time()
    x, y = np.random.RandomState(0).rand(64, 8, 8, 1).astype("float32"), np.arange(64) % 10
    model.fit(x, y, batch_size=16, epochs=10**6, verbose=0, validation_data=(x, y),
              callbacks=[budget, _SlowDown(0.02, after_s=4), rates])
    wall = time.time() - started
    assert budget.stopped and rates.rates[-1] == pytest.approx(1e-5)  # the last step trained at the floor
    assert wall <= 12 + 6  # the budget, the validation after the last step included, plus slack for a busy machine
    after = rates.rates[5:]
    assert all(b <= a + 1e-12 for a, b in zip(after, after[1:]))  # the cosine only goes down
    assert max(rates.rates) == pytest.approx(1e-3, rel=0.05)  # it reached the peak after warmup
    assert 9 <= __import__("json").loads((tmp_path / "budget.json").read_text())["spent_s"] <= 12 + 6


def test_non_finite_guard_stops_a_diverging_fit_and_preemption_refuses_to_back_it_up(tmp_path):
    model = _digits_model()
    model.compile(keras.optimizers.SGD(1e12), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.RandomState(0).rand(64, 8, 8, 1).astype("float32") * 1e3, np.arange(64) % 10
    with pytest.raises(Diverged, match=r"Training diverged at step \d+: the loss is (nan|inf)"):
        model.fit(x, y, batch_size=16, epochs=50, verbose=0, callbacks=[NonFiniteGuard()])
    backup = Preemption(str(tmp_path / "backup"), save_freq=1)
    with pytest.raises(Diverged, match="the weights are no longer finite"):  # the backup is guarded by itself
        model.fit(x, y, batch_size=16, epochs=50, verbose=0, callbacks=[backup])
    assert not (tmp_path / "backup" / "latest.weights.h5").exists()
