"""Opening checkpoint files: which format a file is, and its arrays as NumPy.

Three file formats are read, told apart by their bytes, never by name:

* ``npz``: a NumPy zip archive of ``.npy`` members (the original ViT / AugReg
  checkpoints), read with ``allow_pickle=False``;
* ``safetensors``: 8-byte header length, then a JSON header (timm and Hugging
  Face checkpoints), read by :mod:`keras_vit.weights.safetensors_io`;
* ``pth``: PyTorch's ``torch.save`` zip (or legacy pickle), read with
  ``torch.load(weights_only=True)``, which refuses any pickled object other
  than tensors and plain containers instead of executing it.
"""

import json
import os
import pickle
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from keras_vit.weights.safetensors_io import CorruptCheckpointError, read_safetensors

FORMATS = ("npz", "safetensors", "pth")
# A torch.save file whose top level is a training checkpoint keeps its weights under one of these keys.
STATE_DICT_KEYS = ("state_dict", "model")


class PickledContentError(ValueError):
    """A checkpoint holds pickled objects other than tensors; it is refused, never executed."""


def detect_format(path: str) -> str:
    """Returns ``"npz"``, ``"safetensors"`` or ``"pth"`` from the file's first bytes.

    Raises:
        FileNotFoundError: no such file.
        CorruptCheckpointError: empty, truncated or of no known format.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist (or is not a file).")
    with open(path, "rb") as file:
        head = file.read(9)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:  # non-UTF-8 name, bad version
            raise CorruptCheckpointError(f"{path!r} is a damaged zip archive ({error}); re-download it.") from None
        if names and all(name.endswith(".npy") for name in names):
            return "npz"
        if any(name.endswith("data.pkl") for name in names):
            return "pth"
        raise CorruptCheckpointError(
            f"{path!r} is a zip archive but neither a NumPy .npz (only .npy members) nor a PyTorch "
            f"torch.save file (a data.pkl member); its first members are {names[:5]}."
        )
    if head[:1] == b"\x80":
        return "pth"  # a legacy (non-zip) torch.save pickle; torch.load(weights_only=True) vets it
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < os.path.getsize(path):
        return "safetensors"
    raise CorruptCheckpointError(
        f"{path!r} is not a checkpoint format keras_vit reads (first bytes {head!r}). Expected a NumPy .npz, "
        f"a .safetensors file or a PyTorch .pth/.bin; empty or truncated files end up here too."
    )


def read_npz(path: str) -> dict:
    """name -> array of an ``.npz`` file; object (pickled) arrays are refused."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name]) for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise PickledContentError(
                f"{path!r} holds pickled object arrays; keras_vit does not unpickle checkpoint data. "
                f"Save plain numeric arrays (np.savez) instead."
            ) from None
        raise CorruptCheckpointError(f"{path!r} is not a readable .npz ({error}).") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError, struct.error, SyntaxError,
            tokenize.TokenError) as error:  # the last two: numpy parsing a damaged .npy header
        raise CorruptCheckpointError(f"{path!r} is a damaged .npz ({type(error).__name__}: {error}).") from None


def read_pth(path: str) -> dict:
    """name -> array of a ``torch.save`` state dict, loaded with ``weights_only=True``.

    A top-level dict that holds the weights under ``"state_dict"`` or
    ``"model"`` (training checkpoints) is unwrapped; nothing else is guessed.
    """
    try:
        import torch  # optional: only .pth/.bin files need PyTorch; .npz and .safetensors are read with NumPy
    except ImportError:
        raise ImportError(
            f"Reading {path!r} (a PyTorch .pth/.bin) needs PyTorch: pip install torch==2.14.1 (the test extra's pin). "
            f"Or convert it once to .safetensors, which keras_vit reads with NumPy only."
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise PickledContentError(
            f"{path!r} holds pickled objects other than tensors; keras_vit refuses to execute them "
            f"(torch.load(weights_only=True) said: {str(error).splitlines()[0]})."
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError, TypeError,
            AttributeError, struct.error, NotImplementedError, OverflowError) as error:  # what damaged bytes raise
        first = (str(error).splitlines() or [""])[0]
        raise CorruptCheckpointError(f"{path!r} is a damaged PyTorch file ({type(error).__name__}: {first}).") from None
    if isinstance(state, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{path!r} holds a {type(state).__name__}, not a state dict of tensors.")
    bad = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise CorruptCheckpointError(f"{path!r}: entries {bad[:5]} are not tensors; expected a flat state dict.")
    return {k: v.detach().to(torch.float32 if v.dtype == torch.bfloat16 else v.dtype).numpy() for k, v in state.items()}


def read_checkpoint(path: str, file_format=None) -> dict:
    """Returns the arrays of ``path`` as a dict name -> ``np.ndarray``.

    Args:
        path: the checkpoint file.
        file_format: ``"npz"``, ``"safetensors"`` or ``"pth"``; detected when ``None``.
    """
    file_format = file_format or detect_format(path)
    if file_format == "npz":
        return read_npz(path)
    if file_format == "safetensors":
        return read_safetensors(path)[0]
    if file_format == "pth":
        return read_pth(path)
    raise ValueError(f"file_format must be one of {FORMATS}; received file_format={file_format!r}.")


def read_sidecar(path: str, name: str):
    """The JSON file ``name`` beside ``path`` (a hub download's ``config.json``), or ``None``."""
    sidecar = os.path.join(os.path.dirname(os.path.abspath(path)), name)
    if not os.path.isfile(sidecar):
        return None
    try:
        with open(sidecar, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptCheckpointError(f"{sidecar!r} beside the checkpoint is not valid JSON ({error}).") from None
    return data if isinstance(data, dict) else None
