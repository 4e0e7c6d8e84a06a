"""The ViT building blocks, one per module.

:mod:`keras_vit.layers.formulation` is plain Python: the export modes and the command line read it
without loading Keras. Each layer is imported on first use (``keras_vit.model`` imports them all,
which registers them for ``keras.models.load_model``).
"""

import importlib

from keras_vit.layers.formulation import Formulation, current_formulation, export_formulation

_MODULES = {
    "ClassificationHead": "head",
    "ConvStem": "conv_stem",
    "DropPath": "drop_path",
    "LayerNorm": "normalization",
    "Mlp": "mlp",
    "MultiHeadSelfAttention": "attention",
    "PatchEncoder": "patch_encoder",
    "Patches": "patches",
    "TransformerBlock": "transformer_block",
    "gelu": "activation",
    "sincos_2d": "position_embedding",
}

__all__ = sorted(_MODULES) + ["Formulation", "current_formulation", "export_formulation"]


def __getattr__(name):
    if name not in _MODULES:
        raise AttributeError(f"module 'keras_vit.layers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_vit.layers.{_MODULES[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
