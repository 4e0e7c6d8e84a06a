"""Hugging Face ViT checkpoints <-> keras_vit: logits parity on real CIFAR-10 images, both directions.

transformers runs in a subprocess (conftest's ``run_python``), like timm in
test_weights_timm.py: its torch build crashes when imported after TensorFlow.
"""

import importlib.util
import json
import warnings

import numpy as np
import pytest

from conftest import run_python

if importlib.util.find_spec("transformers") is None:
    pytest.skip("transformers is in the test extra: pip install -e '.[test]'", allow_module_level=True)

import keras_vit  # noqa: E402
from keras_vit.preprocessing import Preprocessing  # noqa: E402
from keras_vit.weights import export_huggingface, load_weights, model_weights  # noqa: E402

# The reference subprocess (torch + the source library) takes 15-30 s: every test here waits on it.
pytestmark = pytest.mark.slow

CONFIG = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
              intermediate_size=128, num_labels=10)  # = vit_test; layer_norm_eps stays HF's default 1e-12

# Jobs: "save" builds a random ViTForImageClassification / ViTModel and save_pretrained()s it (what the hub
# holds), optionally also as a torch.save'd pytorch_model.bin; "load" reads a folder keras_vit exported.
REFERENCE = """
import json, os, numpy as np, torch
from transformers import ViTConfig, ViTForImageClassification, ViTModel
for job in json.load(open(os.environ["JOBS"])):
    if job["kind"] == "load":
        model = ViTForImageClassification.from_pretrained(job["dir"]).eval()
    else:
        torch.manual_seed(job["seed"])
        cls = ViTForImageClassification if job["kind"] == "classifier" else ViTModel
        model = cls(ViTConfig(**job["config"])).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        model.save_pretrained(job["dir"])
        if job.get("bin"):
            torch.save(model.state_dict(), os.path.join(job["dir"], "pytorch_model.bin"))
    for inputs, out, interpolate in job["logits"]:
        x = torch.from_numpy(np.load(inputs)).permute(0, 3, 1, 2)
        with torch.no_grad():
            y = model(pixel_values=x, interpolate_pos_encoding=interpolate)
        y = y.logits if hasattr(y, "logits") else y.last_hidden_state[:, 0]
        np.save(out, y.numpy())
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar10_sample):
    root = tmp_path_factory.mktemp("hf")
    images, _ = cifar10_sample
    np.save(root / "x32.npy", Preprocessing(32).normalize(images[:64]))  # ViTImageProcessor: mean = std = 0.5
    np.save(root / "x64.npy", Preprocessing(64).normalize(np.repeat(np.repeat(images[:16], 2, 1), 2, 2)))
    # keras_vit -> Hugging Face: export a vit_test with random weights for from_pretrained to read.
    exported = keras_vit.create_model("vit_test", layer_norm_epsilon=1e-12)
    rng = np.random.default_rng(0)
    for v in exported.weights:
        v.assign(v.numpy() + rng.normal(scale=0.05, size=v.shape).astype("float32"))
    export_huggingface(exported, str(root / "exported"), labels=keras_vit.datasets.CIFAR10_LABELS)
    np.save(root / "exported_keras.npy", np.asarray(exported(np.load(root / "x32.npy"))))
    r = str(root)
    jobs = [
        {"kind": "classifier", "seed": 0, "config": CONFIG, "dir": f"{r}/cls", "bin": True,
         "logits": [[f"{r}/x32.npy", f"{r}/cls.npy", False], [f"{r}/x64.npy", f"{r}/cls64.npy", True]]},
        {"kind": "model", "seed": 1, "config": {**CONFIG, "layer_norm_eps": 1e-6}, "dir": f"{r}/base",
         "logits": [[f"{r}/x32.npy", f"{r}/base.npy", False]]},
        {"kind": "load", "dir": f"{r}/exported", "logits": [[f"{r}/x32.npy", f"{r}/exported.npy", False]]},
    ]
    (root / "jobs.json").write_text(json.dumps(jobs))
    run_python(REFERENCE, env={"JOBS": str(root / "jobs.json")})
    return root


def max_diff(model, reference, x, name):
    return float(np.abs(np.asarray(model(np.load(reference / x))) - np.load(reference / name)).max())


@pytest.mark.parametrize("file", ["model.safetensors", "pytorch_model.bin"])
def test_vit_for_image_classification_parity_on_cifar(reference, file):
    model = keras_vit.create_model("vit_test", layer_norm_epsilon=1e-12)  # the checkpoint's config.json value
    report = load_weights(model, str(reference / "cls" / file))
    assert report.source == "huggingface" and not report.missing and not report.unexpected
    assert max_diff(model, reference, "x32.npy", "cls.npy") <= 1e-4


def test_vit_model_features_parity_and_pooler_ignored(reference):
    model = keras_vit.create_model("vit_test", num_classes=0)
    report = load_weights(model, str(reference / "base" / "model.safetensors"))
    assert report.ignored == ["pooler.dense.bias", "pooler.dense.weight"]
    assert max_diff(model, reference, "x32.npy", "base.npy") <= 1e-4


def test_larger_image_matches_interpolate_pos_encoding(reference):
    model = keras_vit.create_model("vit_test", image_size=64, layer_norm_epsilon=1e-12)
    assert load_weights(model, str(reference / "cls" / "model.safetensors")).resampled == ((4, 4), (8, 8))
    assert max_diff(model, reference, "x64.npy", "cls64.npy") <= 1e-4


def test_config_json_epsilon_and_heads_are_checked(reference):
    path = str(reference / "cls" / "model.safetensors")
    with pytest.warns(UserWarning, match="layer_norm_epsilon=1e-12"):
        load_weights(keras_vit.create_model("vit_test"), path)
    model = keras_vit.create_model("vit_test", num_heads=4, layer_norm_epsilon=1e-12)
    before = [v.numpy().copy() for v in model.weights]
    with warnings.catch_warnings(), pytest.raises(ValueError, match="num_attention_heads"):
        load_weights(model, path)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


def test_export_is_read_by_from_pretrained_with_the_same_logits(reference):
    assert np.abs(np.load(reference / "exported.npy") - np.load(reference / "exported_keras.npy")).max() <= 1e-4
    config = json.loads((reference / "exported" / "config.json").read_text())
    assert config["id2label"]["0"] == "airplane" and config["layer_norm_eps"] == 1e-12


def test_export_round_trip_returns_identical_tensors(reference):
    original = keras_vit.create_model("vit_test", layer_norm_epsilon=1e-12)
    load_weights(original, str(reference / "cls" / "model.safetensors"))
    export_huggingface(original, str(reference / "round_trip"))
    again = keras_vit.create_model("vit_test", layer_norm_epsilon=1e-12)
    load_weights(again, str(reference / "round_trip" / "model.safetensors"))
    first, second = model_weights(original), model_weights(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    features = keras_vit.create_model("vit_test", num_classes=0, layer_norm_epsilon=1e-12)
    load_weights(features, str(reference / "round_trip" / "model.safetensors"), skip_head=True)
    export_huggingface(features, str(reference / "features"))  # ViTModel layout: no "vit." prefix
    assert json.loads((reference / "features" / "config.json").read_text())["architectures"] == ["ViTModel"]


def test_export_refuses_what_hugging_face_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="pooling='gap'"):
        export_huggingface(keras_vit.create_model("vit_test", pooling="gap"), str(tmp_path))
