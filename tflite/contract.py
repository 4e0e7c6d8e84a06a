"""The JSON file beside an exported model: labels, preprocessing, input/output quantization.

An app needs exactly this to use the model without our code::

    model.tflite
    model.json   {"format": "keras_vit.edge/1", "mode": "int8", "labels": [...],
                  "preprocessing": {"image_size": [32, 32], "channels": 3, "mean": [...], "std": [...]},
                  "input": {"name": "images", "shape": [1, 32, 32, 3], "dtype": "int8",
                            "scale": 0.0078, "zero_point": -1, "layout": "NHWC"},
                  "output": {"name": "logits", "shape": [1, 10], "dtype": "int8", "scale": ..., ...},
                  "sha256": "<of model.tflite>"}

The quantized input is ``round(((pixel / 255 - mean) / std) / scale) + zero_point``. Both files are
written with :func:`keras_vit.atomic.atomic_write`, so an interrupted export never leaves a
half-written file. NumPy-free.
"""

import json
import os

from keras_vit.atomic import atomic_write
from keras_vit.digest import file_digest as sha256_of  # the one hasher, under the name runtime.py uses

FORMAT = "keras_vit.edge/1"


def contract_path(model_path) -> str:
    """``model.tflite`` -> ``model.json`` (the contract beside it)."""
    root, _ = os.path.splitext(os.fspath(model_path))
    return root + ".json"


def check_labels(labels, num_outputs: int, where: str = "labels") -> list:
    """Returns ``labels`` as a list of strings (``"0"``, ``"1"``, ... for None), or raises on a wrong count."""
    from keras_vit.preprocessing import check_class_names

    if labels is None:
        return [str(i) for i in range(num_outputs)]
    return check_class_names(labels, num_outputs, where)


def model_labels(model, labels=None) -> list:
    """``labels`` when given, else the class names the model carries, else ``"0"``, ``"1"``, ... (checked)."""
    if labels is None:
        labels = getattr(model, "class_names", None)
    return check_labels(labels, int(model.output_shape[-1]))


def read_contract(path) -> dict:
    """Reads and checks a contract JSON file.

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: when it is not JSON or not a keras_vit contract.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Model contract {path!r} not found. It is written beside the .tflite by `keras-vit export`; "
            f"copy it together with the model."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"Model contract {path!r} is not valid JSON ({error}). Re-export the model.") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a keras_vit model contract (expected \"format\": {FORMAT!r}).")
    for key in ("preprocessing", "input", "output", "labels"):
        if key not in data:
            raise ValueError(f"Model contract {path!r} has no {key!r} field. Re-export the model.")
    return data


def tensor_entry(detail: dict, name: str) -> dict:
    """The contract's description of an input or output tensor from interpreter details."""
    scale, zero_point = detail["quantization"]
    return {
        "name": name,
        "shape": [int(s) for s in detail["shape"]],
        "dtype": detail["dtype"].__name__ if hasattr(detail["dtype"], "__name__") else str(detail["dtype"]),
        "scale": float(scale),
        "zero_point": int(zero_point),
        "layout": "NHWC" if len(detail["shape"]) == 4 else None,
    }


def write_contract(model_path, mode: str, preprocessing: dict, labels: list, input_entry: dict,
                   output_entry: dict, extra=None) -> str:
    """Writes the contract for ``model_path`` atomically; returns its path."""
    data = {
        "format": FORMAT,
        "mode": mode,
        "labels": list(labels),
        "preprocessing": preprocessing,
        "input": input_entry,
        "output": output_entry,
        "sha256": sha256_of(model_path),
        **(extra or {}),
    }
    path = contract_path(model_path)
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    return path
