"""keras_vit.atomic: complete files or none, the old file kept on failure, normal permissions."""

import os
import subprocess
import sys

import pytest

from keras_vit import atomic
from keras_vit.atomic import atomic_path, atomic_write


def test_writes_bytes_and_text_with_normal_permissions(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "sub" / "model.tflite", b"\x00\x01")
        atomic_write(tmp_path / "sub" / "labels.txt", "café\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "sub" / "model.tflite").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "labels.txt").read_text(encoding="utf-8") == "café\n"
    assert (tmp_path / "sub" / "model.tflite").stat().st_mode & 0o777 == 0o640  # 0666 & ~umask, not 0600
    with pytest.raises(TypeError, match="bytes or str"):
        atomic_write(tmp_path / "x", 3)


def test_interrupted_write_leaves_the_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "model.tflite"
    atomic_write(path, b"old model")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new model that never lands")
    monkeypatch.undo()
    assert path.read_bytes() == b"old model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_fsync_comes_before_the_replace(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    atomic_write(tmp_path / "a.json", "{}")
    assert events == ["fsync", "replace"]


def test_atomic_path_keeps_the_extension_and_cleans_up_on_failure(tmp_path):
    with atomic_path(tmp_path / "weights.npz") as temporary:
        assert os.path.dirname(temporary) == str(tmp_path) and temporary.endswith(".npz")
        with open(temporary, "wb") as f:
            f.write(b"npz")
    assert (tmp_path / "weights.npz").read_bytes() == b"npz"
    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_path(tmp_path / "weights.npz") as temporary:
            with open(temporary, "wb") as f:
                f.write(b"half")
            raise RuntimeError("writer failed")
    assert (tmp_path / "weights.npz").read_bytes() == b"npz"
    assert os.listdir(tmp_path) == ["weights.npz"]


def test_atomic_directory(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "cache", directory=True) as temporary:
            open(os.path.join(temporary, "half.jpg"), "wb").close()
            raise ValueError("extraction stopped")
    assert os.listdir(tmp_path) == []
    with atomic_path(tmp_path / "cache", directory=True) as temporary:
        os.makedirs(os.path.join(temporary, "cat"))
        open(os.path.join(temporary, "cat", "0.jpg"), "wb").close()
    assert os.listdir(tmp_path / "cache" / "cat") == ["0.jpg"]


def test_imports_neither_numpy_nor_tensorflow():
    code = ("import sys, importlib.util; spec = importlib.util.spec_from_file_location('a', sys.argv[1]); "
            "spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
            "assert not {'numpy', 'tensorflow', 'keras'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code, atomic.__file__], check=True)
