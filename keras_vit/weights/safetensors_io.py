"""Reading and writing ``.safetensors`` files with NumPy only.

The format (https://github.com/huggingface/safetensors, "Format"): 8 bytes,
a little-endian unsigned 64-bit header length ``N``; ``N`` bytes of UTF-8 JSON
mapping each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the byte buffer that follows), plus an optional
``"__metadata__"`` string-to-string map; then the byte buffer, little-endian,
C order. ``tests/test_weights_io.py`` checks this reader and writer against the
``safetensors`` package in both directions.
"""

import json
import os
import struct

import numpy as np

from keras_vit.atomic import atomic_path

# safetensors dtype name -> NumPy dtype (BF16 is widened to float32 on read).
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}
_NAMES = {np.dtype(v).str: k for k, v in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024


class CorruptCheckpointError(ValueError):
    """A checkpoint file that cannot be read as the format it claims to be."""


def _fail(path, why):
    raise CorruptCheckpointError(
        f"{path!r} is not a valid .safetensors file: {why}. Re-download or re-export the checkpoint."
    )


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_safetensors(path: str):
    """Reads every tensor of a ``.safetensors`` file.

    Args:
        path: the file.

    Returns:
        ``(tensors, metadata)``: a dict name -> ``np.ndarray`` (BF16 widened to
        float32) and the ``__metadata__`` dict (empty when absent).

    Raises:
        CorruptCheckpointError: truncated file, bad header, offsets outside the
            buffer, or an unknown dtype.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(8)
        if len(head) < 8:
            _fail(path, f"only {len(head)} bytes long")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            _fail(path, f"header length {length} exceeds the file size {size}")
        try:
            header = json.loads(file.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            _fail(path, f"header is not JSON ({error})")
        if not isinstance(header, dict):
            _fail(path, "header is not a JSON object")
        buffer = file.read()
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            _fail(path, f"tensor {name!r} has a malformed entry {info!r:.200}")
        if not isinstance(dtype, str) or not all(_is_count(v) for v in (*shape, begin, end)):
            _fail(path, f"tensor {name!r} has a malformed entry {info!r:.200} (dtype a string; shape and "
                        f"data_offsets non-negative integers)")
        if dtype != "BF16" and dtype not in DTYPES:
            _fail(path, f"tensor {name!r} has unsupported dtype {dtype!r}")
        if not 0 <= begin <= end <= len(buffer):
            _fail(path, f"tensor {name!r} lies at bytes {begin}-{end} beyond the {len(buffer)}-byte buffer "
                        f"(file truncated?)")
        raw = buffer[begin:end]
        count = int(np.prod(shape, dtype=np.int64))
        if dtype == "BF16":
            if len(raw) != 2 * count:
                _fail(path, f"tensor {name!r} has {len(raw)} bytes for shape {shape} in BF16")
            bits = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            tensors[name] = bits.view(np.float32).reshape(shape)
            continue
        np_dtype = np.dtype(DTYPES[dtype])
        if len(raw) != np_dtype.itemsize * count:
            _fail(path, f"tensor {name!r} has {len(raw)} bytes for shape {shape} in {dtype}")
        tensors[name] = np.frombuffer(raw, np_dtype).reshape(shape).copy()
    return tensors, metadata


def write_safetensors(path: str, tensors: dict, metadata=None) -> None:
    """Writes ``tensors`` (name -> array) atomically (:func:`keras_vit.atomic.atomic_path`).

    Args:
        path: destination file.
        tensors: name -> NumPy array (float16/32/64, int, uint8, bool).
        metadata: optional ``{str: str}`` stored as ``__metadata__``.
    """
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        code = array.dtype.newbyteorder("<").str if array.dtype.itemsize > 1 else array.dtype.str
        if code not in _NAMES:
            raise ValueError(f"Cannot store tensor {name!r} of dtype {array.dtype} in safetensors.")
        data = array.astype(code, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[code], "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the reference writer pads the header to 8 bytes
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for chunk in chunks:
            file.write(chunk)
