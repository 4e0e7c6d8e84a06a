"""The hybrid ViT (a convolutional stem cut into 1x1 patches) and ``--time-budget`` training.

The stem is a layer like the others (contract, errors), the plain ViT is unchanged, and the hybrid
saves, reloads, explains, trains from the command line, and exports in every TFLite mode and to
ONNX within each mode's limits on real CIFAR-10 images (one subprocess: conversions leak memory).
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import run_python
from export_harness import train_and_export_script
from vit_harness import run_layer_test

import keras_vit
from keras_vit.datasets import CIFAR10_LABELS
from keras_vit.layers import ConvStem

MODES = ("dynamic", "edgetpu", "float16", "float32", "int16x8", "int8", "int8_cpu", "uint8")


@pytest.mark.parametrize("kwargs,output", [
    ({"filters": [8, 16]}, (2, 8, 8, 16)),
    ({"filters": [4, 8, 16], "strides": 2, "pooling": None, "activation": None}, (2, 4, 4, 16)),
    ({"filters": [6], "kernel_size": 5, "activation": "gelu"}, (2, 16, 16, 6)),
])
def test_conv_stem_keeps_the_layer_contract(kwargs, output):
    run_layer_test(ConvStem, kwargs, (2, 32, 32, 3), output)


@pytest.mark.parametrize("kwargs,message", [
    ({"filters": 64}, "filters must be a non-empty list"),
    ({"filters": []}, "filters must be a non-empty list"),
    ({"filters": [8], "kernel_size": 4}, "kernel_size must be odd"),
    ({"filters": [8], "pooling": "avg"}, "pooling must be one of"),
    ({"filters": [8], "activation": "swish"}, "activation must be one of"),
])
def test_conv_stem_says_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvStem(**kwargs)


def test_model_refuses_a_bad_stem_or_patch_size():
    with pytest.raises(ValueError, match=r"Unknown stem 'conv9'.*conv3x2"):
        keras_vit.create_model("vit_hybrid_test", stem="conv9")
    with pytest.raises(ValueError, match="feature map height 8 .* not divisible by patch_size=3"):
        keras_vit.create_model("vit_hybrid_test", patch_size=3)


def test_the_plain_vit_has_no_stem_and_keeps_its_weight_paths():
    model = keras_vit.create_model("vit_test")
    assert "stem" not in {layer.name for layer in model.layers} and model.get_config()["stem"] is None
    assert [w.path for w in model.weights][:3] == [
        "patch_encoder/class_token", "patch_encoder/position_embeddings", "patch_encoder/projection/kernel"]


def test_hybrid_saves_reloads_and_explains(tmp_path):
    from keras_vit import explain
    from keras_vit.layers import export_formulation

    model = keras_vit.create_model("vit_hybrid_test", class_names=list(CIFAR10_LABELS))
    assert model.get_layer("stem").output.shape == (None, 8, 8, 16)
    assert [w.path for w in model.weights][:2] == ["stem/conv_0/kernel", "stem/conv_0/bias"]
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    y = np.asarray(model(x))
    model.save(tmp_path / "h.keras")
    restored = keras_vit.load_model(tmp_path / "h.keras")
    assert restored.get_config() == model.get_config() and restored.get_config()["stem"] == {"filters": [8, 16]}
    np.testing.assert_array_equal(np.asarray(restored(x)), y)
    # One weight set, both patch-embedding forms: under "conv" the projection is a 1x1 convolution of the feature map.
    with export_formulation(patch_embedding="conv"):
        np.testing.assert_allclose(np.asarray(model(x)), y, atol=1e-5)
    assert tuple(model.forward_features(x).shape) == (2, 65, 32)
    # The grid comes from the patches layer: 8x8 tokens of 4 px each.
    assert explain.patch_grid(model) == ((8, 8), (4.0, 4.0))
    assert explain.attention_rollout(model, x).shape == (2, 8, 8)
    assert explain.position_embedding_similarity(model).shape == (8, 8, 8, 8)
    with pytest.raises(ValueError, match="embeds image patches directly"):
        explain.patch_embedding_components(model)


@pytest.mark.slow
def test_hybrid_trains_from_the_command_line(tmp_path, cifar10_train_root, cifar10_test_root):
    from test_training_distributed import cifar_tree

    from keras_vit.cli import main

    data = cifar_tree(tmp_path / "cifar", cifar10_train_root, cifar10_test_root, train_per_class=16, test_per_class=4)
    out = tmp_path / "run"
    assert main(["train", "--model", "vit_hybrid_test", "--smoke", "--data", data, "--output-dir", str(out),
                 "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["eval_accuracy"] is not None
    assert keras_vit.load_model(out / "model.keras").get_config()["stem"] == {"filters": [8, 16]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cifar10_train_root, cifar10_test_root):
    out = tmp_path_factory.mktemp("hybrid_export")
    model_path = str(out / "hybrid.keras")
    onnx = f"""
import json
from keras_vit.tflite.onnx_export import export_onnx
test, _ = read_image_folder({cifar10_test_root!r}, per_class=10)
print("ONNX", json.dumps(export_onnx(model, {str(out / "hybrid.onnx")!r}, images=test)))
"""
    code = train_and_export_script("vit_hybrid_test", "", model_path, str(out / "hybrid.tflite"), cifar10_train_root,
                                   cifar10_test_root, after=onnx)
    return out, run_python(code, timeout=1200)


@pytest.mark.slow
def test_hybrid_exports_in_every_mode_within_its_limits(exported):
    from keras_vit.tflite.inspection import inspect_file

    out, stdout = exported
    assert "EXIT 0" in stdout, stdout
    assert stdout.count("verdict    OK") == len(MODES), stdout
    assert stdout.count("[PASS] probabilities close to Keras") == len(MODES), stdout  # exports end in softmax
    assert stdout.count("[PASS] top-1 agrees with Keras") == len(MODES), stdout
    assert "[FAIL]" not in stdout
    for mode in MODES:
        info = inspect_file(out / f"hybrid_{mode}.tflite")
        counts = info.op_counts()
        # The stem's two convolutions (ReLU fused) and pools; the Edge TPU form adds the 1x1 projection.
        assert counts["CONV_2D"] == (3 if mode == "edgetpu" else 2), (mode, counts)
        assert counts["MAX_POOL_2D"] == 2 and "RELU" not in counts, (mode, counts)
        if mode in ("int8", "uint8", "edgetpu", "int16x8"):
            assert info.float_ops() == [] and info.flex_ops() == []
    report = json.loads(stdout.split("ONNX", 1)[1].splitlines()[0])
    assert report["ok"] and report["max_abs_error"] <= 1e-4 and report["top1_agreement"] == 1.0


@pytest.mark.slow
def test_edgetpu_file_starts_with_the_stem_on_the_tpu(exported):
    from keras_vit.tflite.edgetpu import edgetpu_report

    report = edgetpu_report(exported[0] / "hybrid_edgetpu.tflite")
    leading = [entry.op for entry in report["ops"][1:6]]
    assert leading[:4] == ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D"], leading
    assert all(entry.placement == "tpu" for entry in report["ops"][1:5])


def test_budget_plan_fits_steps_evaluations_and_saves():
    from keras_vit.training.budget import plan_total_steps

    # 100 s left at 0.5 s a step: 96 s usable after the 4% safety share, minus saves and evaluations.
    total = plan_total_steps(100.0, 0.5, done_steps=20, steps_per_epoch=50, eval_s=4.0, save_s=0.5)
    epochs = -(-total // 50)
    spent = (total - 20) * 0.5 + epochs * (4.0 + 1.0) + 0.5
    assert spent <= 96.0 and spent + 0.5 > 96.0 - 5.0  # fills the budget to within one epoch end
    assert plan_total_steps(1.0, 5.0, done_steps=20, steps_per_epoch=50, eval_s=4.0, save_s=0.5) == 21


@pytest.mark.slow
@pytest.mark.serial  # its bounds are wall time: beside another worker at load 4-6 it missed them twice
def test_time_budget_run_stops_on_time_evaluated_at_its_floor(tmp_path):
    """Digits with --time-budget 1.5: the whole process ends within the 90 s plus a small margin.

    Without XLA (--no-jit): its compilation alone took 16-65 s on this shared machine under load.
    """
    out = tmp_path / "run"
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "keras_vit.cli", "train", "--config", "digits_vit", "--time-budget", "1.5",
         "--output-dir", str(out), "--no-progress", "--threads", "1", "--no-jit", "--calibration-steps", "10"],
        capture_output=True, text=True, timeout=300)
    wall = time.time() - started
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    budget = summary["time_budget"]
    assert "time budget: 1.5 min" in result.stdout
    assert summary["steps"] > budget["calibration_steps"]
    # The learning rate follows the clock: the run stops on it, its last step at digits_vit's floor, however
    # far the step count strays from calibration's estimate (total_steps) on a loaded machine.
    assert budget["stopped_by_deadline"]
    assert budget["last_learning_rate"] == pytest.approx(1e-6, rel=1e-3)
    # 86.8 s at the stop, then once 10.6 s of stalled writes (model.save and fsync while other jobs loaded the
    # disk): the clock decides between steps, so the bound allows for a stall after the last one.
    assert summary["eval_accuracy"] is not None and summary["seconds"] <= 90.0 + 12.0
    plan = json.loads((out / "budget.json").read_text())
    assert plan["total_steps"] == budget["total_steps"]
    # Python's start and the CLI's imports before train()'s clock starts: a few seconds quiet, 36 s at load 7.
    assert wall <= 90.0 + 45.0, wall
