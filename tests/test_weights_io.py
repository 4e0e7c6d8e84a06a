"""Reading checkpoint files: the safetensors codec against the reference package, and bad input.

A failed load must say why and leave the model exactly as it was.
"""

import importlib.util
import os
import pickle

import numpy as np
import pytest

import keras_vit
from keras_vit.weights import (
    CorruptCheckpointError,
    PickledContentError,
    WeightMismatchError,
    detect_format,
    export_timm,
    load_weights,
    model_weights,
    read_safetensors,
    write_safetensors,
)

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")
HAS_SAFETENSORS = importlib.util.find_spec("safetensors") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None


def snapshot(model):
    return [v.numpy().copy() for v in model.weights]


def unchanged(model, before):
    return all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


@pytest.fixture
def checkpoint(tmp_path):
    """A vit_test checkpoint in timm's layout (our export), and the model it came from."""
    model = keras_vit.create_model("vit_test")
    path = export_timm(model, str(tmp_path / "timm"))
    return path, model


@pytest.mark.skipif(not HAS_SAFETENSORS, reason="safetensors is in the test extra")
def test_safetensors_codec_agrees_with_the_reference_package(tmp_path):
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(0)
    tensors = {"a": rng.normal(size=(3, 4)).astype("float32"), "b": rng.normal(size=(5,)).astype("float16"),
               "c": np.arange(6, dtype="int64").reshape(2, 3), "d": np.array([True, False]),
               "e": np.zeros((0, 2), "float32"), "f": np.float64(2.5) * np.ones((1, 1, 2))}
    write_safetensors(str(tmp_path / "ours.safetensors"), tensors, {"format": "pt"})
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    save_file(tensors, str(tmp_path / "theirs.safetensors"), metadata={"k": "v"})
    ours, metadata = read_safetensors(str(tmp_path / "theirs.safetensors"))
    for name, value in tensors.items():
        np.testing.assert_array_equal(theirs[name], value)
        np.testing.assert_array_equal(ours[name], value)
        assert ours[name].dtype == value.dtype
    assert metadata == {"k": "v"}


@pytest.mark.skipif(not (HAS_SAFETENSORS and HAS_TORCH), reason="torch and safetensors are in the test extra")
def test_bfloat16_is_widened_exactly(tmp_path):
    import torch
    from safetensors.torch import save_file

    value = torch.randn(4, 3).to(torch.bfloat16)
    save_file({"w": value}, str(tmp_path / "bf16.safetensors"))
    np.testing.assert_array_equal(read_safetensors(str(tmp_path / "bf16.safetensors"))[0]["w"], value.float().numpy())


def test_formats_are_told_apart_by_content(tmp_path, checkpoint):
    path, _ = checkpoint
    renamed = tmp_path / "weights.npz"  # a misleading name changes nothing
    renamed.write_bytes(open(path, "rb").read())
    assert detect_format(str(renamed)) == "safetensors"
    np.savez(tmp_path / "a.npz", x=np.zeros(2))
    assert detect_format(str(tmp_path / "a.npz")) == "npz"


@pytest.mark.parametrize("cut", [0, 5, 40, -100])
def test_truncated_safetensors_is_a_clear_error_and_the_model_is_untouched(tmp_path, checkpoint, cut):
    path, _ = checkpoint
    data = open(path, "rb").read()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    model = keras_vit.create_model("vit_test")
    before = snapshot(model)
    with pytest.raises(CorruptCheckpointError, match="bad.safetensors"):
        load_weights(model, str(bad))
    assert unchanged(model, before)


def test_truncated_and_garbage_npz_are_clear_errors(tmp_path):
    np.savez(tmp_path / "w.npz", **{"embedding/kernel": np.zeros((8, 8, 3, 32), "float32")})
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.bin").write_bytes(np.random.default_rng(0).bytes(1000))
    model = keras_vit.create_model("vit_test")
    before = snapshot(model)
    for name in ("cut.npz", "noise.bin"):
        with pytest.raises(CorruptCheckpointError, match=name):
            load_weights(model, str(tmp_path / name))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_weights(model, str(tmp_path / "missing.npz"))
    assert unchanged(model, before)


class Payload:
    """Unpickling this runs a command: a checkpoint must never be able to do that."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"cls_token": Payload(marker)}))
    np.save(tmp_path / "obj.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", embedding=np.array([Payload(marker)], dtype=object))
    model = keras_vit.create_model("vit_test")
    before = snapshot(model)
    with pytest.raises(PickledContentError, match="obj.npz"):
        load_weights(model, str(tmp_path / "obj.npz"))
    if HAS_TORCH:
        with pytest.raises(PickledContentError, match="evil.pkl"):
            load_weights(model, str(tmp_path / "evil.pkl"))
    assert not marker.exists()
    assert unchanged(model, before)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is in the test extra")
def test_torch_save_with_pickled_objects_and_truncated_pth(tmp_path, checkpoint):
    import torch

    marker = tmp_path / "executed"
    state = {k: torch.from_numpy(v) for k, v in read_safetensors(checkpoint[0])[0].items()}
    torch.save({"state_dict": state, "hook": Payload(marker)}, tmp_path / "evil.pth")
    torch.save(state, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    model = keras_vit.create_model("vit_test")
    before = snapshot(model)
    with pytest.raises(PickledContentError, match="evil.pth"):
        load_weights(model, str(tmp_path / "evil.pth"))
    with pytest.raises(CorruptCheckpointError, match="cut.pth"):
        load_weights(model, str(tmp_path / "cut.pth"))
    assert not marker.exists() and unchanged(model, before)
    load_weights(model, str(tmp_path / "good.pth"))
    expected = model_weights(checkpoint[1])
    assert all(np.array_equal(v.numpy(), expected[v.path]) for v in model.weights)


def test_checkpoint_for_another_variant_lists_every_mismatch(checkpoint):
    path, _ = checkpoint
    model = keras_vit.create_model("vit_cifar_patch4_32")
    before = snapshot(model)
    with pytest.raises(WeightMismatchError) as caught:
        load_weights(model, path)
    message = str(caught.value)
    assert "patch_encoder/projection/kernel: (192, 32) vs (48, 192)" in message
    assert "no weight was changed" in message and "block_2/norm1/gamma" in message  # missing blocks listed
    assert "block_5/norm1/gamma" in caught.value.missing
    assert len(caught.value.mismatches) > 10 and caught.value.missing
    assert unchanged(model, before)


def test_head_for_other_classes_needs_skip_head(checkpoint):
    path, source = checkpoint
    model = keras_vit.create_model("vit_test", num_classes=3)
    before = snapshot(model)
    with pytest.raises(WeightMismatchError, match=r"head/head/kernel: \(32, 10\) vs \(32, 3\)"):
        load_weights(model, path)
    assert unchanged(model, before)
    report = load_weights(model, path, skip_head=True)
    assert report.skipped == ["head/head/bias", "head/head/kernel"] and not report.missing
    expected = model_weights(source)
    for v in model.weights:
        if v.path.startswith("head/head/"):
            assert np.array_equal(v.numpy(), before[[w.path for w in model.weights].index(v.path)])
        else:
            assert np.array_equal(v.numpy(), expected[v.path])


def test_unknown_layout_asks_for_source(tmp_path):
    write_safetensors(str(tmp_path / "other.safetensors"), {"conv1.weight": np.zeros((4, 3, 3, 3), "float32")})
    with pytest.raises(ValueError, match="Pass source="):
        load_weights(keras_vit.create_model("vit_test"), str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="source must be one of"):
        load_weights(keras_vit.create_model("vit_test"), str(tmp_path / "other.safetensors"), source="jax")


def test_create_model_with_weights(checkpoint):
    path, source = checkpoint
    model = keras_vit.create_model("vit_test", weights=path)
    expected = model_weights(source)
    assert all(np.array_equal(v.numpy(), expected[v.path]) for v in model.weights)
