"""Pretrained ViT weights in and out: original ``.npz``, timm and Hugging Face checkpoints, as arrays.

Nothing here imports the model class: it converts arrays and assigns them to the model it is given.

* :func:`load_weights` (``loader``) reads a checkpoint into a model, all or nothing, and resamples
  position embeddings when the image size differs; :func:`checkpoint_config` reads the architecture a
  checkpoint's files describe.
* One module per checkpoint source, holding its tensor layout, config translation, default contract
  and resampling rule: ``npz`` (:func:`convert_npz`), ``timm`` (:func:`convert_timm`, :func:`to_timm`),
  ``huggingface`` (:func:`convert_huggingface`, :func:`to_huggingface`); ``layout`` names our weight paths.
* ``io`` and ``safetensors_io`` read files without executing pickled code; ``assign`` assigns all or nothing.
* ``resample``: :func:`resample_position_embeddings`.
* ``export``: :func:`export_timm` / :func:`export_huggingface` write our weights back.
* ``hub``: fetches and verifies files from the Hugging Face Hub or Google's bucket (nothing more).

By name: ``keras_vit.create_model(name, pretrained=True)`` (``keras_vit.factory``); the table of known
checkpoints is ``keras_vit.pretrained``, re-exported here.

Example:
    >>> import keras_vit
    >>> model = keras_vit.create_model("vit_tiny_patch16_224.augreg_in21k_ft_in1k", pretrained=True)  # doctest: +SKIP
    >>> model = keras_vit.create_model("Ti/16", weights="Ti_16-augreg.npz")  # doctest: +SKIP
    >>> print(keras_vit.weights.load_weights(model, "Ti_16-augreg.npz").summary())  # doctest: +SKIP
"""

from keras_vit.pretrained import Pretrained, find_pretrained, list_pretrained, register_pretrained
from keras_vit.weights.assign import LoadReport, WeightMismatchError, assign_weights
from keras_vit.weights.export import export_huggingface, export_timm, model_weights
from keras_vit.weights.hub import DownloadError
from keras_vit.weights.huggingface import convert_huggingface, to_huggingface
from keras_vit.weights.io import PickledContentError, detect_format, read_checkpoint
from keras_vit.weights.loader import SOURCES, checkpoint_config, checkpoint_preprocessing, detect_source, load_weights
from keras_vit.weights.npz import convert_npz
from keras_vit.weights.resample import resample_position_embeddings
from keras_vit.weights.safetensors_io import CorruptCheckpointError, read_safetensors, write_safetensors
from keras_vit.weights.timm import convert_timm, to_timm

__all__ = [
    "CorruptCheckpointError", "DownloadError", "LoadReport", "PickledContentError", "Pretrained", "SOURCES",
    "WeightMismatchError", "assign_weights", "checkpoint_config", "checkpoint_preprocessing", "convert_huggingface",
    "convert_npz", "convert_timm", "detect_format", "detect_source", "export_huggingface", "export_timm",
    "find_pretrained", "list_pretrained", "load_weights", "model_weights", "read_checkpoint", "read_safetensors",
    "register_pretrained", "resample_position_embeddings", "to_huggingface", "to_timm", "write_safetensors",
]
