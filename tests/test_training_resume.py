"""Crash and resume: SIGKILL a training run mid-epoch, rerun the same command, lose nothing."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from test_training_distributed import cifar_tree

STEPS_PER_EPOCH, EPOCHS = 40, 2


def _command(data, out):
    return [sys.executable, "-m", "keras_vit.cli", "train", "--model", "vit_test", "--data", data,
            "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS_PER_EPOCH), "--batch-size", "16",
            "--checkpoint-every", "5", "--drop-path-rate", "0", "--learning-rate", "2e-3",
            "--base-batch-size", "16", "--output-dir", str(out), "--no-progress", "--threads", "1"]


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _summary(out):
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, cifar10_train_root, cifar10_test_root):
    return cifar_tree(tmp_path_factory.mktemp("cifar"), cifar10_train_root, cifar10_test_root,
                      train_per_class=64, test_per_class=8)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_finishes_the_plan(tmp_path, data_root):
    import keras
    import tensorflow as tf

    import keras_vit.model  # noqa: F401  registers the layers (no import hook; keras_vit may be imported already)

    out = tmp_path / "crashed"
    process = subprocess.Popen(_command(data_root, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    state = out / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = int(tf.train.latest_checkpoint(str(out / "checkpoints")).rsplit("-", 1)[1])
    assert 0 < killed_at < STEPS_PER_EPOCH  # killed inside the first epoch
    assert not (out / "model.keras").exists()

    _run(_command(data_root, out))  # the same command again
    resumed = _summary(out)
    assert resumed["steps"] == resumed["planned_steps"] == EPOCHS * STEPS_PER_EPOCH
    assert resumed["resumed_from_step"] >= killed_at

    reference_dir = tmp_path / "uninterrupted"
    _run(_command(data_root, reference_dir))
    reference = _summary(reference_dir)
    start = resumed["resumed_from_step"]
    # Same data order, same augmentation, same optimizer state: the resumed steps repeat the reference.
    np.testing.assert_allclose(resumed["step_losses"], reference["step_losses"][start:], atol=1e-4)
    assert resumed["eval_accuracy"] == pytest.approx(reference["eval_accuracy"], abs=0.0125)

    # Nothing corrupt or half-written is left behind.
    assert not glob.glob(str(out / "**" / "*.tmp*"), recursive=True)
    assert not glob.glob(str(out / "checkpoints" / "*_temp*"))
    for prefix in tf.train.get_checkpoint_state(str(out / "checkpoints")).all_model_checkpoint_paths:
        assert tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    for name in ("best.keras", "model.keras"):
        model = keras.models.load_model(out / name, compile=False)
        assert model.output_shape == (None, 10)
    with open(out / "history.csv") as f:
        rows = f.read().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert os.listdir(out / "tensorboard" / "train")
