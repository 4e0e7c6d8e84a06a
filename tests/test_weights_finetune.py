"""``keras-vit finetune`` end to end: a timm checkpoint saved here, fine-tuned on real CIFAR-10 images."""

import importlib.util
import json
import os

import numpy as np
import pytest

from conftest import run_python

if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is in the test extra: pip install -e '.[test]'", allow_module_level=True)

import keras  # noqa: E402

import keras_vit  # noqa: E402
from keras_vit.cli import main  # noqa: E402
from keras_vit.datasets import CIFAR10_LABELS  # noqa: E402
from keras_vit.weights import load_weights, model_weights  # noqa: E402

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# A timm hub-style folder: model.safetensors + config.json whose pretrained_cfg carries ImageNet mean/std.
SAVE_TIMM = """
import json, os, torch, timm
from safetensors.torch import save_file
torch.manual_seed(0)
model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                          depth=2, num_heads=2, num_classes=1000)
folder = os.environ["FOLDER"]
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(folder, "model.safetensors"))
json.dump({"architecture": "vit_tiny_patch16_224", "num_classes": 1000, "global_pool": "token",
           "pretrained_cfg": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                              "interpolation": "bicubic"}}, open(os.path.join(folder, "config.json"), "w"))
"""


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, cifar10_test_root):
    """Real CIFAR-10 JPEGs linked into folder/{train,test}/<class>/ (16 + 4 a class)."""
    root = tmp_path_factory.mktemp("cifar_folder")
    for name in CIFAR10_LABELS:
        files = sorted(os.listdir(os.path.join(cifar10_test_root, name)))
        for split, chosen in (("train", files[:16]), ("test", files[16:20])):
            os.makedirs(root / split / name)
            for file in chosen:
                os.symlink(os.path.join(cifar10_test_root, name, file), root / split / name / file)
    return root


@pytest.mark.slow
def test_finetune_from_a_timm_checkpoint_on_cifar(tmp_path, image_folder):
    checkpoint = tmp_path / "timm"
    checkpoint.mkdir()
    run_python(SAVE_TIMM, env={"FOLDER": str(checkpoint)})
    weights = str(checkpoint / "model.safetensors")
    output = tmp_path / "run"
    code = main(["finetune", "--model", "vit_test", "--weights", weights, "--data", f"folder:{image_folder}",
                 "--steps", "6", "--warmup-steps", "2", "--batch-size", "16", "--learning-rate", "0.03",
                 "--eval-examples", "40", "--output", str(output)])
    assert code == 0
    summary = json.loads((output / "finetune.json").read_text())
    assert summary["source"] == "timm" and summary["steps"] == 6 and summary["test_examples"] == 40
    assert np.isfinite(summary["final_loss"]) and 0.0 <= summary["test_accuracy"] <= 1.0
    # The checkpoint's contract (ImageNet mean/std from its config.json) and the folder's class names
    # travel inside the saved model; no sidecar file is written.
    tuned = keras_vit.load_model(str(output / "model.keras"))
    assert tuned.preprocessing.mean == IMAGENET[0] and tuned.preprocessing.std == IMAGENET[1]
    assert tuned.preprocessing.interpolation == "bicubic" and tuned.class_names == sorted(CIFAR10_LABELS)
    assert not (output / "preprocessing.json").exists()
    # Export with no preprocessing or label flags: the contract comes from the model, and calibration normalizes
    # the folder's images with the ImageNet mean/std (the int8 input scale spans exactly their range).
    exported = tmp_path / "vit_int8.tflite"
    run_python("import sys\nfrom keras_vit.cli import main\n"
               f"sys.exit(main(['export', {str(output / 'model.keras')!r}, {str(exported)!r}, '--mode', 'int8', "
               f"'--calibration', {str(image_folder / 'train')!r}]))")  # 6 steps: logits too small for int8 parity
    written = json.loads(exported.with_suffix(".json").read_text())
    assert written["labels"] == sorted(CIFAR10_LABELS)
    assert tuple(written["preprocessing"]["mean"]) == IMAGENET[0] and tuple(written["preprocessing"]["std"]) == IMAGENET[1]
    from keras_vit.images import read_image_folder

    pixels, _, _ = read_image_folder(image_folder / "train", (32, 32), 3)
    normalized = tuned.preprocessing.normalize(pixels)
    span = max(float(normalized.max()), 0.0) - min(float(normalized.min()), 0.0)
    assert written["input"]["scale"] * 255 == pytest.approx(span, rel=0.02)
    # The encoder started from the checkpoint and was trained; the head started at zero and moved.
    start = keras_vit.create_model("vit_test", num_classes=10)
    load_weights(start, weights, skip_head=True)
    before, after = model_weights(start), model_weights(tuned)
    assert not np.array_equal(before["block_0/mlp/fc1/kernel"], after["block_0/mlp/fc1/kernel"])
    assert np.abs(before["block_0/mlp/fc1/kernel"] - after["block_0/mlp/fc1/kernel"]).max() < 0.5
    assert np.abs(after["head/head/kernel"]).max() > 0


def test_transfer_model_head_is_zero_and_optimizer_follows_the_recipe(tmp_path):
    from keras_vit.training.cli_finetune import transfer_model, transfer_optimizer
    from keras_vit.weights import export_timm

    path = export_timm(keras_vit.create_model("vit_test"), str(tmp_path / "ckpt"))
    model, report = transfer_model("vit_test", path, ["a", "b", "c"], image_size=64)
    assert report.resampled == ((4, 4), (8, 8)) and model.output_shape == (None, 3)
    head = model.get_layer("head").head
    assert not np.any(head.kernel.numpy()) and not np.any(head.bias.numpy())
    optimizer = transfer_optimizer(100, 10, 0.01)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.9
    assert optimizer.global_clipnorm == 1.0 and not optimizer.weight_decay
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]  # warmup then cosine to 0
    np.testing.assert_allclose(values, [0.0, 0.005, 0.01, 0.005, 0.0], atol=1e-9)


def test_finetune_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        main(["finetune", "--model", "vit_test", "--weights", str(tmp_path / "none.npz"), "--data", "digits",
              "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
