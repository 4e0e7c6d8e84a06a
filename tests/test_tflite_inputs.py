"""Bad input to the export and edge code: clear errors, nothing half-written. No conversion here."""

import os

import numpy as np
import pytest

from keras_vit.preprocessing import Preprocessing
from keras_vit.tflite.calibration import calibration_images
from keras_vit.tflite.contract import check_labels
from keras_vit.images import load_image, read_image_folder
from keras_vit.tflite.inspection import NotTFLiteError, inspect_file
from keras_vit.tflite.modes import get_mode


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match=r"mode must be one of .*'int8'.*received mode='int4'"):
        get_mode("int4")


def test_labels_must_match_the_outputs():
    assert check_labels(None, 3) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="2 names but the model has 10 outputs"):
        check_labels(["cat", "dog"], 10)


def test_export_refuses_mismatched_labels_before_converting(tmp_path):
    import keras_vit
    from keras_vit.tflite.convert import export_tflite

    model = keras_vit.create_model("vit_test")
    with pytest.raises(ValueError, match="3 names but the model has 10 outputs"):
        export_tflite(model, tmp_path / "m.tflite", mode="float32", labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="calibration is required"):
        export_tflite(model, tmp_path / "m.tflite", mode="int8")
    with pytest.raises(ValueError, match="must end with .tflite"):
        export_tflite(model, tmp_path / "m.onnx", mode="float32")
    assert os.listdir(tmp_path) == []


def test_calibration_accepts_arrays_iterables_and_folders(cifar10_sample, tmp_path):
    from PIL import Image

    p = Preprocessing(image_size=32)
    pixels = cifar10_sample[0]
    from_array = calibration_images(pixels, p, count=30)
    assert from_array.shape == (30, 32, 32, 3) and from_array.dtype == np.float32
    np.testing.assert_allclose(from_array, p.normalize(pixels[:30]))
    batches = ((pixels[i : i + 8], cifar10_sample[1][i : i + 8]) for i in range(0, 200, 8))
    np.testing.assert_allclose(calibration_images(batches, p, count=30), from_array)
    for i in range(5):
        Image.fromarray(pixels[i]).resize((64, 64)).save(tmp_path / f"{i}.png")
    assert calibration_images(str(tmp_path), p, count=3).shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match=r"shape \(N, 32, 32, 3\).*received shape \(4, 16, 16, 3\)"):
        calibration_images(np.zeros((4, 16, 16, 3), np.uint8), p)
    with pytest.raises(ValueError, match="uint8 pixels or float32"):
        calibration_images(np.zeros((4, 32, 32, 3), np.int32), p)


def test_unreadable_images_are_named_and_skipped(tmp_path, cifar10_sample):
    from PIL import Image

    bad = tmp_path / "cat" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8 this is not a JPEG")
    Image.fromarray(cifar10_sample[0][0]).save(tmp_path / "cat" / "good.png")
    with pytest.raises(ValueError, match=r"Cannot read image .*broken.jpg"):
        load_image(bad, 32)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg", 32)
    images, labels, classes = read_image_folder(tmp_path, 32)  # the bad file is skipped, not fatal
    assert images.shape == (1, 32, 32, 3) and classes == ["cat"] and labels.tolist() == [0]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 a zip, not a model", b"\x08\x01\x12\x00onnx-ish bytes"])
def test_non_tflite_files_are_refused_with_the_reason(tmp_path, content):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(NotTFLiteError, match="is not a TFLite model"):
        inspect_file(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        inspect_file(tmp_path / "absent.tflite")


def test_corrupt_tflite_body_is_refused(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\xff" * 64)
    with pytest.raises((NotTFLiteError, ValueError)):
        inspect_file(path)


def test_folder_listing_is_the_one_training_uses(tmp_path, cifar10_sample):
    from PIL import Image

    from keras_vit.images import IMAGE_EXTENSIONS, scan_image_folder
    from keras_vit.training import sources

    pixels = cifar10_sample[0]
    for name, folder in (("a.png", "."), ("b.jpg", "cat"), ("c.webp", "cat/nested"), ("d.bmp", "dog")):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[0]).save(tmp_path / folder / name)
    (tmp_path / "empty").mkdir()
    (tmp_path / ".hidden").mkdir()
    Image.fromarray(pixels[0]).save(tmp_path / ".hidden" / "e.png")
    (tmp_path / "README.txt").write_text("not an image, not a class")
    (tmp_path / "cat" / "notes.txt").write_text("in a class folder: skipped")
    listing = scan_image_folder(tmp_path)
    assert [os.path.relpath(p, tmp_path) for p in listing.paths] == ["a.png", "cat/b.jpg", "cat/nested/c.webp",
                                                                    "dog/d.bmp"]
    assert listing.labels == [-1, 0, 0, 1] and listing.class_names == ("cat", "dog", "empty")
    assert [os.path.basename(p) for p in listing.skipped] == ["notes.txt"]
    assert sources.list_image_folder(str(tmp_path)).class_names == listing.class_names
    assert read_image_folder(tmp_path, 32)[2] == ["cat", "dog", "empty"]
    assert ".webp" in IMAGE_EXTENSIONS and not hasattr(sources, "IMAGE_EXTENSIONS")
    with pytest.raises(FileNotFoundError, match="Image folder not found"):
        scan_image_folder(tmp_path / "missing")
