"""The ViT building blocks, one per module.

:mod:`keras_vit.layers.formulation` is plain Python (the export modes read it on machines
without Keras); the layers need Keras and are imported only where it is installed.
"""

from keras_vit import _keras_installed
from keras_vit.layers.formulation import Formulation, current_formulation, export_formulation

if _keras_installed():
    from keras_vit.layers.activation import gelu
    from keras_vit.layers.attention import MultiHeadSelfAttention
    from keras_vit.layers.drop_path import DropPath
    from keras_vit.layers.head import ClassificationHead
    from keras_vit.layers.mlp import Mlp
    from keras_vit.layers.normalization import LayerNorm
    from keras_vit.layers.patch_encoder import PatchEncoder
    from keras_vit.layers.patches import Patches
    from keras_vit.layers.position_embedding import sincos_2d
    from keras_vit.layers.transformer_block import TransformerBlock

__all__ = [
    "ClassificationHead",
    "DropPath",
    "Formulation",
    "LayerNorm",
    "Mlp",
    "MultiHeadSelfAttention",
    "PatchEncoder",
    "Patches",
    "TransformerBlock",
    "current_formulation",
    "export_formulation",
    "gelu",
    "sincos_2d",
]
