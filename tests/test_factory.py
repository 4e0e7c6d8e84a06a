"""One resolver (a name, an hf-hub: reference or a path -> a variant, a checkpoint or a file) and create_model's
refusal of keyword arguments it does not know; the 16-bit image reader."""

import os

import numpy as np
import pytest

import keras_vit
from keras_vit.factory import Resolved, create_model, resolve


def test_resolve_tells_a_variant_a_checkpoint_and_a_file(tmp_path):
    assert resolve("Ti/16") == Resolved("variant", "vit_tiny_patch16_224")
    assert resolve("vit_test") == Resolved("variant", "vit_test")
    checkpoint = resolve("vit_tiny_patch16_224.augreg_in21k_ft_in1k")
    assert checkpoint.kind == "checkpoint" and checkpoint.entry.variant == "vit_tiny_patch16_224"
    assert resolve("hf-hub:someone/some-vit") == Resolved("checkpoint", "hf-hub:someone/some-vit")
    assert resolve("npz:imagenet21k/ViT-B_16").entry.num_classes == 21843
    saved = tmp_path / "vit_test"  # an existing path wins over the variant of the same name
    saved.write_bytes(b"")
    assert resolve(saved) == Resolved("file", str(saved))
    assert resolve(str(tmp_path / "missing.keras")) == Resolved("file", str(tmp_path / "missing.keras"))
    assert resolve("vit_test.keras") == Resolved("file", "vit_test.keras")  # a missing file, not a tag "keras"
    assert resolve(str(tmp_path / "no_such_run")) == Resolved("file", str(tmp_path / "no_such_run"))


@pytest.mark.parametrize("name,message", [
    ("vit_tiny_patch16_224.augreg_in21k_ft_in1kk", "Unknown pretrained checkpoint.*augreg_in21k_ft_in1k'"),
    ("vit_tinny_patch16_224", "Unknown ViT variant.*'vit_tiny_patch16_224'"),
])
def test_resolve_refuses_unknown_names_with_the_closest(name, message):
    with pytest.raises(ValueError, match=message):
        resolve(name)


def test_every_loader_asks_the_resolver():
    # The five places that used to guess (is_checkpoint_name) now ask keras_vit.factory.resolve.
    import inspect

    from keras_vit import factory, serialization
    from keras_vit.training import cli_finetune

    for function in (factory.create_model, factory.load_pretrained, serialization.open_model,
                     cli_finetune.transfer_model):
        assert "resolve(" in inspect.getsource(function), function
    assert "load_pretrained(" in inspect.getsource(factory.model_from_name)
    assert not hasattr(keras_vit.weights, "is_checkpoint_name")


def test_create_model_refuses_an_unknown_argument_and_names_the_close_match():
    with pytest.raises(TypeError, match="unexpected keyword argument 'drop_path'.*Did you mean 'drop_path_rate'"):
        create_model("vit_test", drop_path=0.1)
    with pytest.raises(TypeError, match="'bogus_argument'"):
        keras_vit.create_model("vit_test", bogus_argument=1)
    with pytest.raises(TypeError, match="'hiden_dim'.*Did you mean 'hidden_dim'"):
        keras_vit.VisionTransformer(image_size=32, patch_size=8, hiden_dim=32)  # the class itself, from_config too
    model = create_model("vit_test", drop_path_rate=0.1, name="mine")  # known arguments, Keras' name= too
    assert model.drop_path_rate == 0.1 and model.name == "mine"


def test_a_16_bit_png_reads_like_its_8_bit_copy(tmp_path, cifar10_test_root):
    from PIL import Image

    from keras_vit.images import load_image

    ship = os.path.join(cifar10_test_root, "ship", sorted(os.listdir(os.path.join(cifar10_test_root, "ship")))[0])
    with Image.open(ship) as image:
        gray = np.asarray(image.convert("L"))
    Image.fromarray(gray, "L").save(tmp_path / "ship8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "ship16.png")  # a 16-bit grayscale PNG
    with Image.open(tmp_path / "ship16.png") as image:
        assert image.mode.startswith("I"), image.mode
    assert gray.max() > 100  # a real photo, not a dark frame: clipping at 255 would show
    for size, channels in ((32, 3), (32, 1), (48, 3)):  # the predict path: the contract's size and channels
        eight = load_image(tmp_path / "ship8.png", size, channels, "bilinear").astype(int)
        sixteen = load_image(tmp_path / "ship16.png", size, channels, "bilinear").astype(int)
        assert np.abs(eight - sixteen).max() <= 1


def test_32_bit_integer_pixels_are_refused(tmp_path):
    from PIL import Image

    from keras_vit.images import load_image

    Image.fromarray(np.full((8, 8), 70000, np.int32), "I").save(tmp_path / "deep.tif")
    with pytest.raises(ValueError, match="32-bit integer pixels"):
        load_image(tmp_path / "deep.tif", 8)
