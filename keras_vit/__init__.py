"""keras_vit: the Vision Transformer as Keras 3 layers, trained at scale, shipped to edge devices.

Example:
    >>> import keras_vit
    >>> model = keras_vit.create_model("vit_test")
    >>> model.output_shape
    (None, 10)

The model API needs TensorFlow and Keras. On a device that has only the LiteRT
runtime (``pip install keras-vit[runtime]``), ``keras_vit.tflite.runtime``
works without them and this module does not import them.
"""

import importlib.util
import os

# TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) hides our output; set it to 0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_MODEL_API = (
    "ClassificationHead", "DropPath", "LayerNorm", "Mlp", "MultiHeadSelfAttention", "PatchEncoder",
    "Patches", "TransformerBlock", "VisionTransformer", "create_model", "list_models", "layers",
)



def _keras_installed() -> bool:
    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):  # an import hook that hides keras, or a broken install
        return False


if _keras_installed():
    # Importing the layers registers them, so keras.models.load_model finds them.
    from keras_vit import layers
    from keras_vit.layers import (
        ClassificationHead,
        DropPath,
        LayerNorm,
        Mlp,
        MultiHeadSelfAttention,
        PatchEncoder,
        Patches,
        TransformerBlock,
    )
    from keras_vit.model import VisionTransformer
    from keras_vit.registry import create_model, list_models
else:

    def __getattr__(name):
        if name in _MODEL_API:
            raise ImportError(
                f"keras_vit.{name} needs Keras and TensorFlow, which are not installed here. "
                f"Install them with: pip install 'keras-vit[train]'. On a device, use "
                f"keras_vit.tflite.runtime (LiteRT only)."
            )
        raise AttributeError(f"module 'keras_vit' has no attribute {name!r}")
