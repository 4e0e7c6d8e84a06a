"""keras_vit: the Vision Transformer as Keras 3 layers, trained at scale, shipped to edge devices.

Example:
    >>> import keras_vit
    >>> model = keras_vit.create_model("vit_test")
    >>> model.output_shape
    (None, 10)

Modules (docs/architecture.md draws how they stand on each other): the leaves ``registration``,
``registry``, ``pretrained``, ``preprocessing``, ``images``, ``digest``, ``atomic``, ``backend`` and
``datasets``; ``layers`` and ``model``; ``weights``; on top ``factory`` and ``serialization``;
``explain``; the commands ``cli``, ``cli_models``, ``cli_attention``, ``cli_plot`` and ``quickstart``;
and the subpackages ``training`` and ``tflite``.

Importing the package is cheap: the model API (and with it Keras and TensorFlow)
is imported on first use, so ``keras-vit --help`` and the LiteRT runtime
(``keras_vit.tflite.runtime``, all a device needs) never load TensorFlow;
``list_models`` and ``list_pretrained`` are plain Python.

Saved models: ``keras_vit.load_model(path)`` loads a ``.keras`` file. For
``keras.saving.load_model(path)`` the layers must be registered: ``import keras_vit``
does it when Keras is already imported (as ``import keras_hub`` does for KerasHub);
``import keras_vit.model`` or any model API call (``keras_vit.create_model``) does it
always. No import hook is installed.
"""

import importlib
import importlib.util
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) hides our output; set it to 0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# public name: the module that defines it (these need Keras)
_MODEL_API = {
    "ClassificationHead": "keras_vit.layers",
    "DropPath": "keras_vit.layers",
    "LayerNorm": "keras_vit.layers",
    "Mlp": "keras_vit.layers",
    "MultiHeadSelfAttention": "keras_vit.layers",
    "PatchEncoder": "keras_vit.layers",
    "Patches": "keras_vit.layers",
    "TransformerBlock": "keras_vit.layers",
    "VisionTransformer": "keras_vit.model",
    "create_model": "keras_vit.factory",
    "load_model": "keras_vit.serialization",
    "resize_model": "keras_vit.factory",
}
# plain Python: no Keras, no TensorFlow
_TABLES = {"list_models": "keras_vit.registry", "list_pretrained": "keras_vit.pretrained"}
_SUBMODULES = ("factory", "layers", "model", "pretrained", "registry", "serialization", "weights")

__all__ = sorted(_MODEL_API) + sorted(_TABLES) + ["layers"]


def _keras_installed() -> bool:
    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):  # an import hook that hides keras, or a broken install
        return False


def __getattr__(name):
    if name in _TABLES or name in ("pretrained", "registry"):
        module = importlib.import_module(_TABLES.get(name, f"keras_vit.{name}"))
        return module if name not in _TABLES else getattr(module, name)
    if name not in _MODEL_API and name not in _SUBMODULES:
        raise AttributeError(f"module 'keras_vit' has no attribute {name!r}")
    if not _keras_installed():
        raise ImportError(
            f"keras_vit.{name} needs Keras and TensorFlow, which are not installed here. "
            f"Install them with: pip install keras-vit. On a device, use "
            f"keras_vit.tflite.runtime (LiteRT only)."
        )
    importlib.import_module("keras_vit.serialization")  # registers every layer and the model for load_model
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_vit.{name}")
    value = getattr(importlib.import_module(_MODEL_API[name]), name)
    globals()[name] = value
    return value


if sys.modules.get("keras") is not None:  # Keras is loaded already (paid for): register the layers now
    importlib.import_module("keras_vit.serialization")
