"""keras_vit on an emulated Raspberry Pi 5 and Pi 4: the device runtime, ``keras-vit predict`` and the self-check.

Raspberry Pi OS bookworm's Python (Debian's arm64 python3.11) runs under qemu-user-static with the aarch64
wheels of ai-edge-litert, NumPy and Pillow, and keras-vit installed with ``pip install --no-deps`` as
docs/edge.md tells a Pi user; ``.ci/aarch64_setup.sh`` builds it once into a cache outside the repo. Its
logits on real CIFAR-10 JPEGs are compared with x86 LiteRT's for a float32 and an int8 export of
``vit_test``. Measured here: LiteRT's reference kernels agree bit for bit across the two machines, XNNPACK's
float32 to ~1e-6 and its int8 to ~4 output steps (its kernels differ by CPU); on qemu's ``max`` CPU
XNNPACK's int8 is off by more than the logits' range, which the self-check must report.
"""

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
SETUP = os.path.join(REPO, ".ci", "aarch64_setup.sh")
PI_CPUS = {"cortex-a76": "Raspberry Pi 5", "cortex-a72": "Raspberry Pi 4"}
MODES = ("float32", "int8")
IMAGES = 8  # one JPEG from each of 8 classes: qemu runs a few seconds a process

pytestmark = pytest.mark.slow

# Runs on the emulated Pi: logits of each export on the JPEGs, with XNNPACK and with the reference kernels.
ON_PI = """
import json, platform, sys
import numpy as np
from keras_vit.images import load_image
from keras_vit.tflite.runtime import LiteRTModel
from keras_vit.tflite.selfcheck import reference_model
folder, files = sys.argv[1], sys.argv[2:]
out = {"machine": platform.machine(), "python": platform.python_version()}
for mode in ("float32", "int8"):
    model = LiteRTModel(f"{folder}/vit_{mode}.tflite")
    p = model.preprocessing
    pixels = np.stack([load_image(f, p.image_size, p.channels, p.interpolation) for f in files])
    out[mode] = {"xnnpack": model.predict(pixels).tolist(),
                 "reference": reference_model(model.path).predict(pixels).tolist()}
out["tensorflow_loaded"] = "tensorflow" in sys.modules
print(json.dumps(out))
"""


def emulated_pi() -> str:
    """The launcher that ``.ci/aarch64_setup.sh`` builds (fast once built); skips where qemu cannot be installed."""
    result = subprocess.run(["bash", SETUP], capture_output=True, text=True, timeout=1200)
    if result.returncode == 77:
        pytest.skip(f"no emulated aarch64 here: {result.stderr.strip().splitlines()[-1]}")
    if result.returncode != 0:
        raise AssertionError(f"{SETUP} failed ({result.returncode}):\n{result.stderr}")
    return os.path.join(result.stdout.strip().splitlines()[-1], "run")


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    """``(launcher, site)``: keras-vit from this checkout installed for the Pi as ``pip install --no-deps`` does."""
    launcher = emulated_pi()
    site = tmp_path_factory.mktemp("pi_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-compile",
                    "--disable-pip-version-check", "--target", str(site), REPO], check=True, capture_output=True)
    return launcher, str(site)


def emulate(pi, cpu, *args, timeout=600) -> subprocess.CompletedProcess:
    launcher, site = pi
    # Not from the repo root, whose keras_vit/ (without tflite/ inside) would shadow the installed package.
    return subprocess.run([launcher, cpu, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": site}, cwd=os.path.dirname(site))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cifar10_sample):
    out = tmp_path_factory.mktemp("aarch64")
    np.save(out / "calibration.npy", cifar10_sample[0][:64])
    run_python(f"""
import numpy as np, keras_vit
from keras_vit.tflite.convert import export_tflite
model = keras_vit.create_model("vit_test")
for mode in {MODES!r}:
    export_tflite(model, {str(out)!r} + f"/vit_{{mode}}.tflite", mode=mode,
                  calibration=np.load({str(out / "calibration.npy")!r}), labels={list(CIFAR10_LABELS)!r},
                  outputs="logits")  # logits: the measured limits below are in logit steps
""")
    return out


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory, cifar10_test_root):
    """A flat folder of 8 real CIFAR-10 test JPEGs, and their paths."""
    folder = tmp_path_factory.mktemp("jpegs")
    for name in CIFAR10_LABELS[:IMAGES]:
        first = sorted(os.listdir(os.path.join(cifar10_test_root, name)))[0]
        shutil.copy(os.path.join(cifar10_test_root, name, first), folder / f"{name}.jpg")
    return folder, sorted(str(path) for path in folder.iterdir())


@pytest.fixture(scope="module")
def on_x86(exported, jpegs):
    """x86 LiteRT's logits and output scale per mode, as ON_PI computes them."""
    from keras_vit.images import load_image
    from keras_vit.tflite.runtime import LiteRTModel
    from keras_vit.tflite.selfcheck import reference_model

    out = {}
    for mode in MODES:
        model = LiteRTModel(exported / f"vit_{mode}.tflite")
        p = model.preprocessing
        pixels = np.stack([load_image(f, p.image_size, p.channels, p.interpolation) for f in jpegs[1]])
        out[mode] = {"xnnpack": model.predict(pixels), "reference": reference_model(model.path).predict(pixels),
                     "scale": float(model.output["quantization"][0])}
    return out


@pytest.fixture(scope="module", params=list(PI_CPUS))
def cpu(request):
    return request.param


@pytest.fixture(scope="module")
def on_pi(pi, cpu, exported, jpegs):
    result = emulate(pi, cpu, "-c", ON_PI, str(exported), *jpegs[1])
    assert result.returncode == 0, f"{PI_CPUS[cpu]} ({cpu}) failed:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_runtime_on_pi_matches_x86(on_pi, on_x86, cpu):
    assert (on_pi["machine"], on_pi["python"][:4]) == ("aarch64", "3.11")
    assert not on_pi["tensorflow_loaded"]
    for mode in MODES:
        # int8: within 8 output steps (measured 4); float32: float rounding only (measured 1.3e-6).
        atol = 8 * on_x86[mode]["scale"] if mode == "int8" else 1e-5
        got, want = (np.asarray(on_pi[mode]["xnnpack"]), on_x86[mode]["xnnpack"])
        np.testing.assert_allclose(got, want, atol=atol, rtol=0, err_msg=f"XNNPACK {mode} on {PI_CPUS[cpu]}")
        np.testing.assert_allclose(np.asarray(on_pi[mode]["reference"]), on_x86[mode]["reference"], atol=1e-5,
                                   rtol=0, err_msg=f"reference kernels, {mode}, on {PI_CPUS[cpu]}")


@pytest.mark.parametrize("mode", MODES)
def test_predict_on_pi_prints_the_runtime_probabilities(pi, cpu, exported, jpegs, on_pi, mode):
    from keras_vit.tflite.runtime import softmax

    launcher, site = pi
    result = emulate(pi, cpu, os.path.join(site, "bin", "keras-vit"), "predict", str(exported / f"vit_{mode}.tflite"),
                     *jpegs[1], "--top-k", "10")
    assert result.returncode == 0, result.stderr
    printed, current = {}, None
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            current = printed.setdefault(line.strip(), {})
        else:
            percent, label = line.split()
            current[label] = float(percent.rstrip("%")) / 100
    assert list(printed) == jpegs[1]
    probabilities = softmax(np.asarray(on_pi[mode]["xnnpack"]))
    for path, row in zip(jpegs[1], probabilities):
        np.testing.assert_allclose([printed[path][label] for label in CIFAR10_LABELS], row, atol=1e-4, err_msg=path)


def test_self_check_passes_on_pi(pi, cpu, exported, jpegs):
    result = emulate(pi, cpu, "-m", "keras_vit.cli", "verify", str(exported / "vit_int8.tflite"), "--self-check",
                     "--images", str(jpegs[0]))
    assert result.returncode == 0 and "OK: XNNPACK agrees" in result.stdout, result.stdout + result.stderr


def test_self_check_reports_qemu_max_cpu(pi, exported, jpegs):
    """qemu's max CPU is a known disagreement for int8 (see the module docstring): the check must say so."""
    result = emulate(pi, "max", "-m", "keras_vit.cli", "verify", str(exported / "vit_int8.tflite"), "--self-check",
                     "--images", str(jpegs[0]))
    assert result.returncode == 1 and "DISAGREE" in result.stdout, result.stdout + result.stderr
