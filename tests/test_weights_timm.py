"""timm checkpoints -> keras_vit: logits parity on real CIFAR-10 images, .pth and safetensors, new sizes.

timm runs in a subprocess (conftest's ``run_python``): its CUDA-build
dependencies (triton) crash when imported after TensorFlow in one process.
That process builds random timm ViTs, saves their checkpoints as timm users do
(``safetensors.torch.save_file`` / ``torch.save``) and records timm's logits.
"""

import importlib.util
import json

import numpy as np
import pytest

from conftest import run_python

if importlib.util.find_spec("timm") is None or importlib.util.find_spec("safetensors") is None:
    pytest.skip("timm and safetensors are in the test extra: pip install -e '.[test]'", allow_module_level=True)

import keras_vit  # noqa: E402
from keras_vit.preprocessing import Preprocessing  # noqa: E402
from keras_vit.weights import WeightMismatchError, export_timm, load_weights, model_weights  # noqa: E402

# The reference subprocess (torch + the source library) takes 15-30 s: every test here waits on it.
pytestmark = pytest.mark.slow

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TEST_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0, num_classes=10)

# Each job: build timm's vit_tiny_patch16_224 with `args` (every parameter randomised: timm zero-initialises
# some), save it as `save` in `format`, and write its logits on each `inputs` .npy; or (with `file`) let timm
# itself load a saved checkpoint at another size (checkpoint_filter_fn resamples the position embeddings).
REFERENCE = """
import json, os, numpy as np, torch, timm
from safetensors.torch import save_file
for job in json.load(open(os.environ["JOBS"])):
    if "file" in job:
        model = timm.create_model("vit_tiny_patch16_224", pretrained=True,
                                  pretrained_cfg_overlay=dict(file=job["file"], num_classes=job["args"]["num_classes"]),
                                  **job["args"]).eval()
    else:
        torch.manual_seed(job.get("seed", 0))
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **job["args"]).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if job["format"] == "safetensors":
            save_file(state, job["save"])
        elif job["format"] == "pth":
            torch.save(state, job["save"])
        else:  # timm train.py's checkpoint: the weights under "state_dict", beside other entries
            torch.save({"epoch": 3, "arch": "vit", "state_dict": state}, job["save"])
    for inputs, out in job.get("logits", []):
        x = torch.from_numpy(np.load(inputs)).permute(0, 3, 1, 2)
        with torch.no_grad():
            np.save(out, model(x).numpy())
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar10_sample):
    """Runs every timm job of this module in one subprocess; returns the folder and a logits reader."""
    from PIL import Image

    root = tmp_path_factory.mktemp("timm")
    images, _ = cifar10_sample
    half = Preprocessing(32)
    np.save(root / "x32.npy", half.normalize(images[:64]))
    np.save(root / "x32_imagenet.npy", Preprocessing(32, mean=IMAGENET[0], std=IMAGENET[1]).normalize(images[:16]))
    np.save(root / "x64.npy", Preprocessing(64).normalize(np.repeat(np.repeat(images[:16], 2, 1), 2, 2)))
    big = np.stack([np.asarray(Image.fromarray(im).resize((384, 384), Image.BICUBIC)) for im in images[:4]])
    np.save(root / "x384.npy", Preprocessing(384).normalize(big))
    # keras_vit -> timm: export random vit_test models (token and gap pooling) for timm to read.
    rng = np.random.default_rng(0)
    exports = []
    for pooling in ("token", "gap"):
        model = keras_vit.create_model("vit_test", pooling=pooling)
        for v in model.weights:
            v.assign(v.numpy() + rng.normal(scale=0.05, size=v.shape).astype("float32"))
        export_timm(model, str(root / f"exported_{pooling}"))
        np.save(root / f"exported_{pooling}_keras.npy", np.asarray(model(np.load(root / "x32.npy"))))
        model_args = json.loads((root / f"exported_{pooling}" / "config.json").read_text())["model_args"]
        exports.append({"file": str(root / f"exported_{pooling}" / "model.safetensors"), "args": model_args,
                        "logits": [[str(root / "x32.npy"), str(root / f"exported_{pooling}.npy")]]})
    r = str(root)

    def job(name, args, fmt="safetensors", x="x32", **extra):
        return {"save": f"{r}/{name}.{'safetensors' if fmt == 'safetensors' else 'pth'}", "format": fmt,
                "args": args, "logits": [[f"{r}/{x}.npy", f"{r}/{name}.npy"]], **extra}

    gap = {**TEST_ARGS, "global_pool": "avg", "fc_norm": False}
    jobs = [
        job("test", TEST_ARGS),
        job("tiny4", dict(img_size=32, patch_size=4, num_classes=10), seed=1),
        job("gap", gap, seed=2),
        job("fcnorm", {**TEST_ARGS, "global_pool": "avg"}, seed=3),
        job("pth", TEST_ARGS, fmt="pth", seed=4),
        job("wrapped", TEST_ARGS, fmt="wrapped", seed=5),
        job("imagenet", TEST_ARGS, x="x32_imagenet", seed=6),
        {"file": f"{r}/test.safetensors", "args": {**TEST_ARGS, "img_size": 64},
         "logits": [[f"{r}/x64.npy", f"{r}/test_at_64.npy"]]},
        job("ti16", dict(num_classes=10), seed=7, logits=[]),
        {"file": f"{r}/ti16.safetensors", "args": dict(img_size=384, num_classes=10),
         "logits": [[f"{r}/x384.npy", f"{r}/ti16_at_384.npy"]]},
    ] + exports
    (root / "jobs.json").write_text(json.dumps(jobs))
    run_python(REFERENCE, env={"JOBS": str(root / "jobs.json")})
    return root


def max_diff(model, reference, inputs, logits):
    return float(np.abs(np.asarray(model(np.load(reference / inputs))) - np.load(reference / logits)).max())


@pytest.mark.parametrize("file, name, overrides", [
    ("test.safetensors", "vit_test", {}),
    ("tiny4.safetensors", "vit_tiny_patch4_32", {}),  # ViT-Ti, 64 patches
    ("gap.safetensors", "vit_test", {"pooling": "gap"}),  # timm global_pool="avg", fc_norm=False
    ("pth.pth", "vit_test", {}),  # torch.save state dict, read with weights_only=True
    ("wrapped.pth", "vit_test", {}),  # timm training checkpoint {"state_dict": ...}
])
def test_timm_logits_parity_on_cifar(reference, file, name, overrides):
    model = keras_vit.create_model(name, **overrides)
    report = load_weights(model, str(reference / file))
    assert report.source == "timm" and not report.missing and not report.unexpected
    assert len(report.loaded) == len(model.weights)
    assert max_diff(model, reference, "x32.npy", file.split(".")[0] + ".npy") <= 1e-4


def test_timm_config_json_gives_the_preprocessing_contract(reference, tmp_path, cifar10_sample):
    images, _ = cifar10_sample
    (tmp_path / "model.safetensors").write_bytes((reference / "imagenet.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({
        "architecture": "vit_tiny_patch16_224", "global_pool": "token",
        "pretrained_cfg": {"mean": IMAGENET[0], "std": IMAGENET[1], "interpolation": "bicubic"}}))
    model = keras_vit.create_model("vit_test")
    report = load_weights(model, str(tmp_path / "model.safetensors"))
    assert (report.preprocessing.mean, report.preprocessing.std) == IMAGENET
    inputs = report.preprocessing.normalize(images[:16])
    np.testing.assert_allclose(inputs, np.load(reference / "x32_imagenet.npy"), atol=1e-6)
    assert np.abs(np.asarray(model(inputs)) - np.load(reference / "imagenet.npy")).max() <= 1e-4


def test_timm_config_pooling_mismatch_is_refused(reference, tmp_path):
    (tmp_path / "model.safetensors").write_bytes((reference / "test.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({"global_pool": "avg"}))
    model = keras_vit.create_model("vit_test")
    before = [v.numpy().copy() for v in model.weights]
    with pytest.raises(WeightMismatchError, match="pooling"):
        load_weights(model, str(tmp_path / "model.safetensors"))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


def test_fc_norm_checkpoint_is_refused(reference):
    with pytest.raises(ValueError, match="fc_norm"):
        load_weights(keras_vit.create_model("vit_test", pooling="gap"), str(reference / "fcnorm.safetensors"))


def test_larger_image_matches_timms_own_resampling(reference):
    """A 64x64 model from 32x32 weights equals timm loading the same file at 64 (checkpoint_filter_fn)."""
    model = keras_vit.create_model("vit_test", image_size=64)
    report = load_weights(model, str(reference / "test.safetensors"))
    assert report.resampled == ((4, 4), (8, 8))
    assert max_diff(model, reference, "x64.npy", "test_at_64.npy") <= 1e-4


def test_ti16_at_384_from_224_weights_matches_timm(reference):
    """The real case: ViT-Ti/16 224 weights at 384 (a 24x24 grid from 14x14), on CIFAR images upscaled."""
    model = keras_vit.create_model("Ti/16@384", num_classes=10)
    report = load_weights(model, str(reference / "ti16.safetensors"))
    assert report.resampled == ((14, 14), (24, 24))
    assert max_diff(model, reference, "x384.npy", "ti16_at_384.npy") <= 1e-4


@pytest.mark.parametrize("pooling", ["token", "gap"])
def test_export_is_read_by_timm_with_the_same_logits(reference, pooling):
    ours, theirs = np.load(reference / f"exported_{pooling}_keras.npy"), np.load(reference / f"exported_{pooling}.npy")
    assert np.abs(ours - theirs).max() <= 1e-4


def test_export_round_trip_returns_identical_tensors(reference, tmp_path):
    original = keras_vit.create_model("vit_test")
    load_weights(original, str(reference / "test.safetensors"))
    export_timm(original, str(tmp_path / "out"))
    again = keras_vit.create_model("vit_test")
    load_weights(again, str(tmp_path / "out" / "model.safetensors"))
    first, second = model_weights(original), model_weights(again)
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    with pytest.raises(ValueError, match="pre-logits"):
        export_timm(keras_vit.create_model("vit_test", representation_size=16), str(tmp_path / "bad"))
