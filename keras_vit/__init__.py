"""keras_vit: the Vision Transformer as Keras 3 layers, trained at scale, shipped to edge devices.

Example:
    >>> import keras_vit
    >>> model = keras_vit.create_model("vit_test")
    >>> model.output_shape
    (None, 10)

Importing the package is cheap: the model API (and with it Keras and TensorFlow)
is imported on first use, so ``keras-vit --help`` and the LiteRT runtime
(``keras_vit.tflite.runtime``, all a device needs) never load TensorFlow.
The layers are registered for ``keras.models.load_model`` as soon as Keras is
imported, before or after keras_vit, so saved models reload without
``custom_objects``.
"""

import importlib
import importlib.util
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) hides our output; set it to 0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# public name: the module that defines it
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
    "create_model": "keras_vit.registry",
    "list_models": "keras_vit.registry",
    "load_model": "keras_vit.serialization",
}
_SUBMODULES = ("layers", "model", "registry", "serialization", "weights")

__all__ = sorted(_MODEL_API) + ["layers"]


def _keras_installed() -> bool:
    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):  # an import hook that hides keras, or a broken install
        return False


def __getattr__(name):
    if name not in _MODEL_API and name not in _SUBMODULES:
        raise AttributeError(f"module 'keras_vit' has no attribute {name!r}")
    if not _keras_installed():
        raise ImportError(
            f"keras_vit.{name} needs Keras and TensorFlow, which are not installed here. "
            f"Install them with: pip install keras-vit. On a device, use "
            f"keras_vit.tflite.runtime (LiteRT only)."
        )
    importlib.import_module("keras_vit.layers")  # registers every layer and the model for load_model
    importlib.import_module("keras_vit.model")
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_vit.{name}")
    value = getattr(importlib.import_module(_MODEL_API[name]), name)
    globals()[name] = value
    return value


def _register_layers(*_):
    __getattr__("layers")


class _AfterKerasImport:
    """Registers our layers right after ``import keras`` runs (a lazy package must not import it itself).

    It stays on ``sys.meta_path`` until Keras really executes: a mere ``find_spec("keras")`` probe
    (TensorFlow makes one) must not use it up.
    """

    _finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                run(module)
                try:
                    _register_layers()
                except ImportError:  # Keras was first imported by one of our own layer modules, mid-import
                    pass

            spec.loader.exec_module = exec_module
        return spec


if sys.modules.get("keras") is not None:  # Keras is paid for already: register now
    _register_layers()
elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
