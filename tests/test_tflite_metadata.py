"""Files that apps consume as they are: MediaPipe Tasks' ImageClassifier runs our exports with their metadata.

One subprocess (TFLite conversions leak memory) trains vit_test briefly on 500 real CIFAR-10 training
images with a per-channel (ImageNet) contract and exports it through ``export_tflite`` as it is: the
graph ends in softmax, the metadata is written by the export, and the app files normalize in their
graph. MediaPipe 1.2.2, the task library that Android and iOS apps run, classifies the CIFAR-10 test
JPEGs in a subprocess of its own (mediapipe and TensorFlow in one process may crash), and its scores
are compared with ``LiteRTModel``'s.
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
# Per channel: MediaPipe refuses a per-channel mean/std ("Per-channel image normalization is not
# available"); the app files take pixels and normalize in the graph, so their metadata says mean 0, std 1.
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
APP_MODES = ("dynamic", "float16", "float32", "int8_cpu")
# MediaPipe decodes the JPEGs itself, PIL for us: top-1 agreement and max |score difference| allowed.
AGREEMENT = {mode: (0.97, 0.03) for mode in APP_MODES}
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
import keras, tensorflow as tf
from conftest import read_image_folder
import keras_vit
from keras_vit.tflite.convert import export_tflite
keras.utils.set_random_seed(0)
x, y = read_image_folder({cifar10_train_root!r}, per_class=50)
model = keras_vit.create_model("vit_test", class_names={list(CIFAR10_LABELS)!r}, mean={MEAN!r}, std={STD!r})
model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(model.preprocessing.normalize(x), y, epochs=3, batch_size=50, verbose=0)
for mode in {APP_MODES + ("uint8", "int8")!r}:
    export_tflite(model, f"{out}/vit_{{mode}}.tflite", mode=mode, calibration=x, calibration_size=100)
export_tflite(model, f"{out}/vit_logits.tflite", mode="float32", outputs="logits")
plain = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
open(f"{out}/plain.tflite", "wb").write(tf.lite.TFLiteConverter.from_keras_model(plain).convert())
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
    # MediaPipe feeds a uint8 input the pixels as they are. The graph normalizes them, and the export sets
    # the input's quantization to the pixels themselves: exact for a per-channel contract too.
    model = LiteRTModel(exported / "vit_uint8.tflite")
    assert model.input["quantization"] == (1.0, 0) and model.normalizes_in_graph
    ours = model.predict(pixels)
    np.testing.assert_array_equal(scores.argmax(1), ours.argmax(1))
    assert np.abs(scores - ours).max() <= 1e-6  # measured: 0.0
    error, _ = _mediapipe(exported / "vit_int8.tflite", paths[:1])
    assert "uint8/float32, got INT8" in error  # int8 is the file for our runtime and NNAPI


@pytest.mark.slow
def test_the_export_writes_the_metadata_the_contract_describes(exported):
    from keras_vit.tflite.contract import sha256_of
    from keras_vit.tflite.metadata import read_metadata

    for mode in APP_MODES + ("uint8",):
        contract = json.loads((exported / f"vit_{mode}.json").read_text())
        metadata = read_metadata(exported / f"vit_{mode}.tflite")
        assert contract["sha256"] == sha256_of(exported / f"vit_{mode}.tflite")  # the bytes with metadata
        assert contract["outputs"] == metadata["outputs"] == "probabilities" and contract["output"]["name"] == "probabilities"
        assert contract["normalization"] == "in_graph" and contract["preprocessing"]["mean"] == list(MEAN)
        assert metadata["mean"] == (0.0,) * 3 and metadata["std"] == pytest.approx((1 / 255,) * 3)
    contract = json.loads((exported / "vit_int8.json").read_text())
    metadata = read_metadata(exported / "vit_int8.tflite")
    assert contract["normalization"] == "caller" and metadata["mean"] == pytest.approx(MEAN)
    logits = read_metadata(exported / "vit_logits.tflite")
    assert logits["outputs"] == "logits" and logits["labels"] == list(CIFAR10_LABELS)


@pytest.mark.slow
def test_metadata_parses_with_the_schema_mediapipe_ships(exported):
    """Our writer is flatbuffers alone: the schema's generated Python reads every field we write."""
    import importlib.util

    from keras_vit.tflite.metadata import _metadata_buffer

    spec = importlib.util.find_spec("mediapipe")
    schema_path = os.path.join(spec.submodule_search_locations[0], "tasks", "metadata",
                               "metadata_schema_py_generated.py")
    module_spec = importlib.util.spec_from_file_location("metadata_schema", schema_path)
    schema = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(schema)
    _, raw = _metadata_buffer((exported / "vit_int8.tflite").read_bytes())
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0)
    model = schema.ModelMetadataT.InitFromPackedBuf(raw, 0)
    image = model.subgraphMetadata[0].inputTensorMetadata[0]
    assert image.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    assert image.processUnits[0].optionsType == schema.ProcessUnitOptions.NormalizationOptions
    np.testing.assert_allclose(image.processUnits[0].options.mean, np.array(MEAN) * 255, rtol=1e-6)
    np.testing.assert_allclose(image.processUnits[0].options.std, np.array(STD) * 255, rtol=1e-6)
    scores = model.subgraphMetadata[0].outputTensorMetadata[0]
    assert scores.name == b"probabilities" and list(scores.stats.max) == [1.0]
    assert scores.associatedFiles[0].type == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    assert model.minParserVersion == b"1.0.0"


@pytest.mark.slow
def test_runtime_reads_the_metadata_when_no_contract_is_beside_the_file(exported, jpegs, tmp_path):
    import shutil

    from keras_vit.tflite.runtime import LiteRTModel

    for mode in ("uint8", "int8"):
        shutil.copy(exported / f"vit_{mode}.tflite", tmp_path / f"{mode}.tflite")
        alone, beside = LiteRTModel(tmp_path / f"{mode}.tflite"), LiteRTModel(exported / f"vit_{mode}.tflite")
        assert alone.contract is None and alone.labels == list(CIFAR10_LABELS) and alone.outputs == "probabilities"
        np.testing.assert_array_equal(alone.predict(jpegs[1][:20]), beside.predict(jpegs[1][:20]))
        ranked = alone.classify(jpegs[0][0], top_k=10)
        assert sum(p for _, p in ranked) == pytest.approx(1.0, abs=0.02)  # no second softmax
        assert ranked[0][1] == pytest.approx(beside.predict(jpegs[1][:1]).max(), abs=1e-6)


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
