"""The device runtime: LiteRTModel and `keras-vit predict` with ai_edge_litert, NumPy and PIL only."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_python

from keras_vit.datasets import CIFAR10_LABELS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Simulates a Raspberry Pi without TensorFlow: keras and tensorflow (and their submodules) cannot
# be imported. ``sys.modules["keras"] = None`` is what makes ``importlib.util.find_spec("keras")``
# answer None, as it does on a device where keras is not installed.
BLOCKER = """
import importlib.abc, sys
BLOCKED = ("tensorflow", "keras", "tf_keras", "jax", "torch")
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: simulated device)", name=name)
        return None
sys.meta_path.insert(0, Blocker())
sys.modules["keras"] = None
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cifar10_sample):
    out = tmp_path_factory.mktemp("runtime")
    np.save(out / "calibration.npy", cifar10_sample[0][:64])
    code = f"""
import numpy as np, keras_vit
from keras_vit.tflite.convert import export_tflite
model = keras_vit.create_model("vit_test")
for mode in ("int8", "float32"):
    export_tflite(model, {str(out)!r} + f"/vit_{{mode}}.tflite", mode=mode,
                  calibration=np.load({str(out / "calibration.npy")!r}), labels={list(CIFAR10_LABELS)!r})
"""
    run_python(code)
    return out


@pytest.fixture(scope="module")
def cat_jpeg(cifar10_test_root):
    return os.path.join(cifar10_test_root, "cat", sorted(os.listdir(os.path.join(cifar10_test_root, "cat")))[0])


def test_runtime_never_imports_tensorflow(exported, cat_jpeg):
    code = BLOCKER + f"""
from keras_vit.tflite.runtime import LiteRTModel
from keras_vit.cli import main
model = LiteRTModel({str(exported / "vit_int8.tflite")!r})
ranked = model.classify({cat_jpeg!r}, top_k=3)
assert len(ranked) == 3 and ranked[0][0] in {list(CIFAR10_LABELS)!r}, ranked
assert main(["predict", {str(exported / "vit_int8.tflite")!r}, {cat_jpeg!r}, "--top-k", "2"]) == 0
assert main(["benchmark", {str(exported / "vit_float32.tflite")!r}, "--runs", "3", "--warmup", "1"]) == 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
assert "tensorflow" not in sys.modules and not loaded, loaded
print("NO-TF OK")
"""
    assert "NO-TF OK" in run_python(code)


def test_classify_and_predict_agree(exported, cat_jpeg):
    from keras_vit.images import load_image
    from keras_vit.tflite.runtime import LiteRTModel

    model = LiteRTModel(exported / "vit_int8.tflite")
    ranked = model.classify(cat_jpeg, top_k=10)
    assert model.outputs == "probabilities"  # the graph ends in softmax: classify adds none
    probabilities = model.predict(load_image(cat_jpeg, 32)[None])[0]
    assert [label for label, _ in ranked] == [CIFAR10_LABELS[i] for i in np.argsort(-probabilities)]
    np.testing.assert_allclose(sorted(p for _, p in ranked)[::-1], np.sort(probabilities)[::-1], rtol=1e-5)
    assert model.mode == "int8" and model.delegate_partitions() >= 1


def test_ops_outside_the_delegate_name_what_xnnpack_did_not_take(exported):
    from keras_vit.tflite.runtime import LiteRTModel

    assert LiteRTModel(exported / "vit_float32.tflite").ops_outside_delegate() == {}  # one partition
    model = LiteRTModel(exported / "vit_int8.tflite")
    outside = model.ops_outside_delegate()
    # XNNPACK has no int8 SOFTMAX or RSQRT: one of each per block (2 blocks) and the final softmax stay
    # outside, and the per-head attention products (FULLY_CONNECTED with activation weights) run on builtin kernels.
    assert outside["SOFTMAX"] == 3 and outside["RSQRT"] >= 4, outside
    assert outside.get("FULLY_CONNECTED", 0) >= 2 * 2 * 2, outside
    assert model.delegate_partitions() > 1


def test_predict_command_prints_top_k(exported, cat_jpeg, capsys):
    from keras_vit.cli import main

    assert main(["predict", str(exported / "vit_float32.tflite"), cat_jpeg, "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == cat_jpeg and len(lines) == 4
    assert all(line.split()[-1] in CIFAR10_LABELS for line in lines[1:])


def test_benchmark_reports_percentiles(exported):
    from keras_vit.tflite.runtime import LiteRTModel

    result = LiteRTModel(exported / "vit_float32.tflite", num_threads=1).benchmark(runs=5, warmup=1)
    assert result["runs"] == 5 and result["num_threads"] == 1
    assert 0 < result["min_ms"] <= result["p50_ms"] <= result["p90_ms"]


def test_contract_labels_that_do_not_match_the_outputs_are_refused(exported, tmp_path):
    from keras_vit.tflite.runtime import LiteRTModel

    shutil.copy(exported / "vit_int8.tflite", tmp_path / "m.tflite")
    contract = json.loads((exported / "vit_int8.json").read_text())
    contract["labels"] = contract["labels"][:9]
    (tmp_path / "m.json").write_text(json.dumps(contract))
    with pytest.raises(ValueError, match="9 names but the model has 10 outputs"):
        LiteRTModel(tmp_path / "m.tflite")


def test_contract_from_another_export_is_refused(exported, tmp_path):
    from keras_vit.tflite.runtime import LiteRTModel

    shutil.copy(exported / "vit_float32.tflite", tmp_path / "m.tflite")
    shutil.copy(exported / "vit_int8.json", tmp_path / "m.json")
    with pytest.raises(ValueError, match="different model file"):
        LiteRTModel(tmp_path / "m.tflite")


def test_bad_model_and_image_files_give_clear_errors(exported, tmp_path, capsys):
    from keras_vit.cli import main
    from keras_vit.tflite.runtime import LiteRTModel

    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes((exported / "vit_float32.tflite").read_bytes()[:4096])  # truncated
    with pytest.raises(ValueError):
        LiteRTModel(corrupt)
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    assert main(["predict", str(text), "x.jpg"]) == 2
    assert "is not a TFLite model" in capsys.readouterr().err
    bad_image = tmp_path / "bad.jpg"
    bad_image.write_bytes(b"\xff\xd8\xff garbage")
    assert main(["predict", str(exported / "vit_int8.tflite"), str(bad_image)]) == 1
    assert "Cannot read image" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_in_a_venv_with_only_litert_numpy_pillow(exported, cat_jpeg, tmp_path):
    """A clean venv like a Raspberry Pi's: ai-edge-litert, numpy, pillow, and keras-vit --no-deps."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["ai-edge-litert==2.3.0", "numpy==2.4.6", "pillow==13.0.0"], check=True, timeout=600)
    subprocess.run(pip + ["--no-deps", REPO], check=True, timeout=600, cwd=str(tmp_path))
    result = subprocess.run(
        [str(venv / "bin" / "keras-vit"), "predict", str(exported / "vit_int8.tflite"), cat_jpeg, "--top-k", "3"],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 4
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import tensorflow"], capture_output=True)
    assert check.returncode != 0  # the venv really has no TensorFlow
