"""Files that apps consume as they are: MediaPipe Tasks' ImageClassifier runs our exports with their metadata.

One subprocess (TFLite conversions leak memory) trains vit_test briefly on 500 real CIFAR-10 training
images with a per-channel contract, exports it with a softmax at the end in five modes, and writes the
metadata into each file (then the contract's sha256, as the export will). MediaPipe 1.2.2, the task
library that Android and iOS apps run, classifies the CIFAR-10 test JPEGs in a subprocess of its own
(mediapipe and TensorFlow in one process may crash), and its scores are compared with ``LiteRTModel``'s.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_image_folder, run_python
from test_tflite_runtime import BLOCKER  # a device: no TensorFlow, no Keras

from keras_vit.datasets import CIFAR10_LABELS

HERE = os.path.dirname(os.path.abspath(__file__))
# MediaPipe refuses a per-channel mean/std ("Per-channel image normalization is not available"). With
# 255 * mean an integer, a calibrated uint8 input is quantized as the pixels themselves (see the uint8 test).
MEAN, STD = 0.4, 0.3
# Measured on this test's model (200 images, 20 a class): MediaPipe decodes the JPEGs itself, PIL for us.
# float32, float16: top-1 agreement 99%, max |score difference| 0.008 (same pixels: 100% and 0.0);
# dynamic: 99%, 0.010 (its activations are quantized by each runtime's own kernels).
AGREEMENT = {"float32": (0.97, 0.03), "float16": (0.97, 0.03), "dynamic": (0.97, 0.03)}
MEDIAPIPE_CLIENT = r"""
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision

model, images = sys.argv[1], sys.argv[2:]
if images[0].endswith(".npy"):
    images = list(np.load(images[0]))
try:
    options = vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=-1)
    classifier = vision.ImageClassifier.create_from_options(options)
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
    sys.exit(0)
rows = []
for image in images:
    image = (mp.Image.create_from_file(image) if isinstance(image, str)
             else mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
    categories = classifier.classify(image).classifications[0].categories
    rows.append(sorted([c.index, c.category_name, c.score] for c in categories))
classifier.close()
print(json.dumps({"rows": rows}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cifar10_train_root):
    out = tmp_path_factory.mktemp("metadata")
    code = f"""
import sys
sys.path.insert(0, {HERE!r})
import json
import keras
from conftest import read_image_folder
import keras_vit
from keras_vit.atomic import atomic_write
from keras_vit.tflite.contract import contract_path, sha256_of
from keras_vit.tflite.convert import export_tflite
from keras_vit.tflite.metadata import add_metadata
keras.utils.set_random_seed(0)
x, y = read_image_folder({cifar10_train_root!r}, per_class=50)
model = keras_vit.create_model("vit_test", class_names={list(CIFAR10_LABELS)!r}, mean={MEAN!r}, std={STD!r})
model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(model.preprocessing.normalize(x), y, epochs=3, batch_size=50, verbose=0)
probabilities = keras.Model(model.input, keras.layers.Softmax()(model.output))
for mode in ("float32", "float16", "dynamic", "uint8", "int8"):
    path = f"{out}/vit_{{mode}}.tflite"
    export_tflite(probabilities, path, mode=mode, calibration=x, preprocessing=model.preprocessing,
                  labels=model.class_names, calibration_size=100)
    with open(path, "rb") as handle:
        data = handle.read()
    if mode == "float32":
        atomic_write(f"{out}/plain.tflite", data)
    data = add_metadata(data, model.class_names, model.preprocessing)
    atomic_write(path, data)
    with open(contract_path(path)) as handle:
        contract = json.load(handle)
    atomic_write(contract_path(path), json.dumps({{**contract, "sha256": sha256_of(path)}}))
"""
    run_python(code, timeout=900)
    return out


def _mediapipe(model_path, images):
    """MediaPipe's scores ``(N, 10)`` and category names per image (files, or one .npy of pixels), or its error."""
    run = subprocess.run([sys.executable, "-c", MEDIAPIPE_CLIENT, str(model_path), *map(str, images)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    if "error" in result:
        return result["error"], None
    scores = np.array([[score for _, _, score in row] for row in result["rows"]], np.float32)
    return scores, [[name for _, name, _ in row] for row in result["rows"]]


@pytest.fixture(scope="module")
def jpegs(cifar10_test_root):
    paths = [os.path.join(cifar10_test_root, name, file) for name in CIFAR10_LABELS
             for file in sorted(os.listdir(os.path.join(cifar10_test_root, name)))[:20]]
    return paths, read_image_folder(cifar10_test_root, per_class=20)[0]  # cifar10_sample's 200 images, in order


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(AGREEMENT))
def test_mediapipe_names_the_classes_and_agrees_with_our_runtime(exported, jpegs, mode):
    from keras_vit.tflite.runtime import LiteRTModel

    paths, pixels = jpegs
    scores, names = _mediapipe(exported / f"vit_{mode}.tflite", paths)
    assert not isinstance(scores, str), scores
    assert all(row == list(CIFAR10_LABELS) for row in names)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    ours = LiteRTModel(exported / f"vit_{mode}.tflite").predict(pixels)  # the graph ends in softmax
    min_top1, max_error = AGREEMENT[mode]
    assert (scores.argmax(1) == ours.argmax(1)).mean() >= min_top1
    assert np.abs(scores - ours).max() <= max_error


@pytest.mark.slow
def test_mediapipe_float32_equals_our_runtime_on_the_same_pixels(exported, jpegs, tmp_path):
    from keras_vit.tflite.runtime import LiteRTModel

    np.save(tmp_path / "pixels.npy", jpegs[1])
    scores, _ = _mediapipe(exported / "vit_float32.tflite", [tmp_path / "pixels.npy"])
    ours = LiteRTModel(exported / "vit_float32.tflite").predict(jpegs[1])
    np.testing.assert_allclose(scores, ours, atol=1e-5)  # measured: 0.0


@pytest.mark.slow
def test_mediapipe_gives_a_uint8_input_the_pixels_and_refuses_int8(exported, jpegs, tmp_path):
    from keras_vit.tflite.runtime import LiteRTModel

    paths, pixels = jpegs
    np.save(tmp_path / "pixels.npy", pixels)
    scores, names = _mediapipe(exported / "vit_uint8.tflite", [tmp_path / "pixels.npy"])
    assert not isinstance(scores, str), scores
    assert all(row == list(CIFAR10_LABELS) for row in names)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=0.02)  # a uint8 softmax: steps of 1/256
    # MediaPipe feeds a uint8 input the pixels as they are (it ignores the normalization). That is exact when
    # the input is quantized as (pixel / 255 - mean) / std itself: scale 1 / (255 std), zero point 255 mean,
    # as calibration on images that span 0..255 gives for this contract. With mean 0.5 (zero point 127.5) it
    # is half a step off: measured 93.5% top-1 agreement on a model like this one.
    model = LiteRTModel(exported / "vit_uint8.tflite")
    scale, zero_point = model.input["quantization"]
    assert zero_point == round(255 * MEAN) and scale == pytest.approx(1 / (255 * STD), rel=1e-3)
    ours = model.predict(pixels)
    assert (scores.argmax(1) == ours.argmax(1)).mean() >= 0.99
    assert np.abs(scores - ours).max() <= 1 / 256 + 1e-6  # measured: 0.0
    error, _ = _mediapipe(exported / "vit_int8.tflite", paths[:1])
    assert "uint8/float32, got INT8" in error


@pytest.mark.slow
def test_read_metadata_needs_neither_tensorflow_nor_mediapipe(exported):
    code = BLOCKER + f"""
BLOCKED += ("mediapipe",)
del sys.modules["keras"]  # else keras_vit takes the None entry for an imported Keras
import json
from keras_vit.tflite.metadata import read_metadata
metadata = read_metadata({str(exported / "vit_uint8.tflite")!r})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
assert not loaded, loaded
print(json.dumps(metadata))
"""
    metadata = json.loads(run_python(code).splitlines()[-1])
    assert metadata["labels"] == list(CIFAR10_LABELS)
    np.testing.assert_allclose(metadata["mean"], MEAN, rtol=1e-6)
    np.testing.assert_allclose(metadata["std"], STD, rtol=1e-6)
    assert metadata["outputs"] == "probabilities"
    assert metadata["image_size"] == [32, 32] and metadata["channels"] == 3


@pytest.mark.slow
def test_add_metadata_replaces_what_is_there_and_checks_its_arguments(exported):
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.tflite.metadata import add_metadata, read_metadata

    data = (exported / "vit_float16.tflite").read_bytes()
    again = add_metadata(data, [name.upper() for name in CIFAR10_LABELS], Preprocessing(image_size=32),
                         outputs="logits")
    assert abs(len(again) - len(data)) < 200  # one metadata buffer and one labels file, not two
    metadata = read_metadata(again)
    assert metadata["labels"][0] == "AIRPLANE" and metadata["mean"] == pytest.approx((0.5,) * 3)
    assert metadata["outputs"] == "logits"
    with pytest.raises(ValueError, match="has 2 names but the model has 10 outputs"):
        add_metadata(data, ["cat", "dog"], Preprocessing(image_size=32))
    with pytest.raises(ValueError, match=r"input is \[1, 32, 32, 3\] but preprocessing describes \[1, 64, 64, 3\]"):
        add_metadata(data, CIFAR10_LABELS, Preprocessing(image_size=64))
    with pytest.raises(ValueError, match="line break"):
        add_metadata(data, ["a\nb"] + list(CIFAR10_LABELS[1:]), Preprocessing(image_size=32))


def test_apply_outputs_ends_in_softmax_or_leaves_the_logits():
    from keras_vit.tflite.metadata import apply_outputs

    logits = np.array([[1.0, 2.0, 3.0]], np.float32)
    probabilities = np.asarray(apply_outputs(logits))
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(apply_outputs(logits, "logits")), logits)
    with pytest.raises(ValueError, match="outputs must be one of"):
        apply_outputs(logits, "softmax")


@pytest.mark.slow
def test_a_model_without_metadata_reads_as_none(exported):
    from keras_vit.tflite.metadata import read_metadata

    assert read_metadata(exported / "plain.tflite") is None
