"""``keras-vit finetune`` survives the drills ``keras-vit train`` does (it is a train run from a checkpoint):
SIGTERM saves the step and the same command resumes there, a full disk names the file and keeps what was
saved, a diverging learning rate stops with the step and saves nothing non-finite."""

import json
import signal
import subprocess
import sys
import time

import pytest

from keras_vit.training.faults import DIVERGED, PREEMPTED, WRITE_FAILED
from test_training_faults import (SIGTERM_EXIT_BOUND_S, _checkpoint_is_finite, _latest_step, _load_keras, _Run,
                                  _small_disk)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A timm-layout checkpoint of the digits ViT, written in a subprocess (it imports Keras)."""
    folder = tmp_path_factory.mktemp("pretrained")
    code = ("import sys, keras_vit\nfrom keras_vit.weights import export_timm\n"
            "print(export_timm(keras_vit.create_model('vit_digits_patch2_8'), sys.argv[1]))")
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def _finetune(out, weights, *flags):
    return [sys.executable, "-m", "keras_vit.cli", "finetune", "--model", "vit_digits_patch2_8", "--weights", weights,
            "--data", "digits", "--batch-size", "16", "--eval-examples", "64", "--output", str(out), "--no-jit",
            *flags]


@pytest.mark.slow
def test_finetune_sigterm_saves_the_step_and_the_same_command_resumes(tmp_path, checkpoint):
    out = tmp_path / "run"
    command = _finetune(out, checkpoint, "--steps", "80", "--checkpoint-every", "1000")
    run = _Run(command)
    seen = run.wait_for_step(20)
    sent = time.time()
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(timeout=SIGTERM_EXIT_BOUND_S + 30) == PREEMPTED, run.output()
    seconds = time.time() - sent
    saved = _latest_step(out)
    path = out / "checkpoints" / f"ckpt-{saved}"
    assert run.last_error_line() == (f"Stopped by SIGTERM at step {saved}: saved {path}; run the same command "
                                     f"again to resume from step {saved}.")
    assert seen <= saved <= seen + 3 and seconds < SIGTERM_EXIT_BOUND_S
    rerun = _Run(command)
    assert rerun.wait() == 0, rerun.output()
    assert f"resumed at step {saved}" in "".join(rerun.stdout)
    result = json.loads((out / "finetune.json").read_text())
    assert result["steps"] == 80 and 0.0 <= result["test_accuracy"] <= 1.0 and result["source"] == "timm"
    _load_keras(out / "model.keras")
    print(f"finetune SIGTERM after step {seen}: saved step {saved}, exited 75 after {seconds:.2f} s, 0 steps lost")


@pytest.mark.slow
def test_finetune_full_disk_names_the_file_keeps_the_last_checkpoint_and_resumes(tmp_path, checkpoint):
    # A checkpoint of the digits ViT with SGD momentum is 1.62 MB: in 3 MB the one of step 10 fits, step 20's not.
    disk, grow = _small_disk(tmp_path, "3m")
    if grow is None:
        pytest.skip("mounting a tmpfs needs root here")
    out = disk / "run"
    command = _finetune(out, checkpoint, "--steps", "40", "--checkpoint-every", "10")
    try:
        run = _Run(command)
        assert run.wait() == WRITE_FAILED, run.output()
        line = run.last_error_line()
        path = out / "checkpoints" / "ckpt-20"
        assert line.startswith(f"Could not write {path}: no space left on device (ENOSPC)."), run.output()
        assert "the last checkpoint, step 10, is intact" in line
        assert line.endswith("free space and run the same command again to resume."), line
        assert _latest_step(out) == 10 and _checkpoint_is_finite(out, 10)
        grow()
        rerun = _Run(command)
        assert rerun.wait() == 0, rerun.output()
        assert "resumed at step 10" in "".join(rerun.stdout)
        assert json.loads((out / "finetune.json").read_text())["steps"] == 40
        print(f"finetune full disk: exit {WRITE_FAILED} at ckpt-20; resumed at 10 after the disk grew")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow
def test_finetune_divergence_stops_naming_the_step_and_saves_nothing_non_finite(tmp_path, checkpoint):
    out = tmp_path / "run"
    run = _Run(_finetune(out, checkpoint, "--steps", "20", "--checkpoint-every", "1", "--learning-rate", "1e9",
                         "--warmup-steps", "0"))
    assert run.wait() == DIVERGED, run.output()
    line = run.last_error_line()
    assert line.startswith("Training diverged "), run.output()
    assert "--learning-rate (now 1e+09)" in line and "othing of it was saved" in line
    latest = _latest_step(out)
    assert latest is not None and _checkpoint_is_finite(out, latest)
    assert not (out / "model.keras").exists() and not (out / "best.keras").exists()
    print(f"finetune lr 1e9: {line[:90]}; last checkpoint {latest}")
