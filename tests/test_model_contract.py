"""The contract lives on the model: saved in .keras, set by loaders, legacy sidecars still read; the timm-style API."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.preprocessing import Preprocessing

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
NAMES = ["airplane", "bird", "cat"]


def test_contract_is_saved_in_the_keras_file_and_read_in_a_fresh_process(tmp_path):
    model = keras_vit.create_model("vit_test", num_classes=3, class_names=NAMES, mean=IMAGENET[0], std=IMAGENET[1],
                                   interpolation="bicubic")
    path = tmp_path / "m.keras"
    model.save(path)
    code = ("import json, keras_vit\n"
            f"m = keras_vit.load_model({str(path)!r})\n"
            "print(json.dumps({'p': m.preprocessing.to_dict(), 'names': m.class_names}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    saved = json.loads(out.stdout.strip().splitlines()[-1])
    assert saved["names"] == NAMES
    assert tuple(saved["p"]["mean"]) == IMAGENET[0] and tuple(saved["p"]["std"]) == IMAGENET[1]
    assert saved["p"]["interpolation"] == "bicubic" and tuple(saved["p"]["image_size"]) == (32, 32)
    assert Preprocessing.for_model(model) == model.preprocessing


def test_a_legacy_run_folder_with_preprocessing_json_still_loads_its_contract(tmp_path):
    keras_vit.create_model("vit_test").save(tmp_path / "best.keras")
    # A run saved before the contract lived on the model: drop the contract keys from the archive's config.
    import zipfile

    with zipfile.ZipFile(tmp_path / "best.keras") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    for key in ("mean", "std", "interpolation", "class_names"):
        del config["config"][key]
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "best.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    legacy = Preprocessing(32, mean=IMAGENET[0], std=IMAGENET[1])
    (tmp_path / "preprocessing.json").write_text(legacy.to_json())
    with pytest.warns(UserWarning, match="legacy"):
        model = keras_vit.load_model(tmp_path / "best.keras")
    assert model.preprocessing == legacy


def test_set_contract_and_class_names_are_checked():
    model = keras_vit.create_model("vit_test")
    with pytest.raises(ValueError, match="class_names has 3 names but the model has num_classes=10"):
        model.set_contract(class_names=NAMES)
    with pytest.raises(ValueError, match=r"contract is for \(64, 64\) images"):
        model.set_contract(Preprocessing(64))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        keras_vit.create_model("vit_test", interpolation="lanczos")
    with pytest.raises(ValueError, match="std must be positive"):
        keras_vit.create_model("vit_test", std=0.0)
    model.set_contract(Preprocessing(32, mean=0.1, std=0.2), class_names=[str(i) for i in range(10)])
    assert model.get_config()["mean"] == [0.1] * 3 and model.class_names[9] == "9"


def test_reset_classifier_keeps_the_encoder_and_zeroes_the_new_head(cifar10_sample):
    model = keras_vit.create_model("vit_test", representation_size=16, mean=IMAGENET[0], std=IMAGENET[1])
    x = model.preprocessing.to_inputs(cifar10_sample[0][:4])
    tuned = model.reset_classifier(3, NAMES)
    assert tuned.output_shape == (None, 3) and tuned.class_names == NAMES
    assert tuned.preprocessing == model.preprocessing and tuned.representation_size is None
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tuned(x)), 0.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tuned.forward_features(x)),
                                  keras.ops.convert_to_numpy(model.forward_features(x)))
    features = model.reset_classifier(0)
    assert features.output_shape == (None, 32) and features.class_names is None
    # Pooled features of the new model == the original's head input pooled (pre_logits dropped).
    pooled = keras.ops.convert_to_numpy(model.forward_head(model.forward_features(x), pre_logits=True))
    kept = model.reset_classifier(0, keep_pre_logits=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kept(x)), pooled, atol=1e-6)


def test_forward_features_and_forward_head_compose_to_the_model(cifar10_sample):
    model = keras_vit.create_model("vit_test", representation_size=16, representation_activation="tanh")
    x = model.preprocessing.to_inputs(cifar10_sample[0][:4])
    tokens = model.forward_features(x)
    assert tuple(tokens.shape) == (4, 17, 32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.forward_head(tokens)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    assert tuple(model.forward_head(tokens, pre_logits=True).shape) == (4, 16)


def test_create_model_passes_keras_name_through():
    model = keras_vit.create_model("vit_test", name="my_vit")
    assert model.name == "my_vit"
    assert keras_vit.create_model("vit_test").name == "vit_test"


def test_to_inputs_normalizes_uint8_and_refuses_wrong_shapes():
    p = Preprocessing(32, mean=0.5, std=0.25)
    np.testing.assert_allclose(p.to_inputs(np.full((32, 32, 3), 255, np.uint8)), 2.0)
    floats = np.zeros((2, 32, 32, 3), np.float64)
    assert p.to_inputs(floats).dtype == np.float32
    with pytest.raises(ValueError, match=r"shape \(N, 32, 32, 3\).*received shape \(1, 16, 16, 3\)"):
        p.to_inputs(np.zeros((16, 16, 3), np.uint8), where="calibration")
    with pytest.raises(ValueError, match="uint8 pixels or float32"):
        p.to_inputs(np.zeros((1, 32, 32, 3), np.int32))


def test_help_and_the_command_list_do_not_import_tensorflow():
    code = ("import contextlib, io, sys\n"
            "from keras_vit.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "    main(['models', 'vit_tiny_*'])\n"
            "assert 'export' in out.getvalue() and 'vit_tiny_patch16_224' in out.getvalue()\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_import_keras_vit_makes_saved_models_load_without_an_import_hook(tmp_path):
    # The contract (README): import keras_vit after Keras, or call keras_vit.load_model; nothing on sys.meta_path.
    keras_vit.create_model("vit_test").save(tmp_path / "m.keras")
    path = str(tmp_path / "m.keras")
    for code in (f"import keras, keras_vit\nm = keras.saving.load_model({path!r})",
                 f"import keras_vit\nm = keras_vit.load_model({path!r})"):
        code += ("\nimport sys\nassert not [f for f in sys.meta_path if type(f).__module__.startswith('keras_vit')]"
                 "\nprint(type(m).__name__)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == "VisionTransformer"
