"""Pretrained ViT weights in and out: original ``.npz``, timm and Hugging Face checkpoints.

* :func:`load_weights` reads a checkpoint into a model, all or nothing, and
  resamples position embeddings when the image size differs.
* One pure converter per source (:func:`convert_npz`, :func:`convert_timm`,
  :func:`convert_huggingface`): a dict of arrays -> a dict keyed by our weight paths.
* :func:`resample_position_embeddings` and :func:`resize_model` for new resolutions.
* :func:`export_timm` / :func:`export_huggingface` write our weights back.
* By name (:mod:`keras_vit.weights.hub`, table in :mod:`keras_vit.weights.pretrained`):
  :func:`load_pretrained` / :func:`model_from_name` fetch a timm, Hugging Face or original ``.npz``
  checkpoint, cache and verify it, build its architecture and load it; :func:`list_pretrained`.

Example:
    >>> import keras_vit
    >>> model = keras_vit.create_model("vit_tiny_patch16_224.augreg_in21k_ft_in1k", pretrained=True)  # doctest: +SKIP
    >>> model = keras_vit.create_model("Ti/16", weights="Ti_16-augreg.npz")  # doctest: +SKIP
    >>> print(keras_vit.weights.load_weights(model, "Ti_16-augreg.npz").summary())  # doctest: +SKIP
"""

from keras_vit.weights.assign import LoadReport, WeightMismatchError, assign_weights
from keras_vit.weights.export import export_huggingface, export_timm, model_weights
from keras_vit.weights.hub import DownloadError, is_checkpoint_name, load_pretrained, model_from_name
from keras_vit.weights.huggingface import convert_huggingface, to_huggingface
from keras_vit.weights.io import PickledContentError, detect_format, read_checkpoint
from keras_vit.weights.loader import SOURCES, checkpoint_preprocessing, detect_source, load_weights
from keras_vit.weights.npz import convert_npz
from keras_vit.weights.pretrained import Pretrained, find_pretrained, list_pretrained, register_pretrained
from keras_vit.weights.resample import resample_position_embeddings, resize_model
from keras_vit.weights.safetensors_io import CorruptCheckpointError, read_safetensors, write_safetensors
from keras_vit.weights.timm import convert_timm, to_timm

__all__ = [
    "CorruptCheckpointError", "DownloadError", "LoadReport", "PickledContentError", "Pretrained", "SOURCES",
    "WeightMismatchError", "assign_weights", "checkpoint_preprocessing", "convert_huggingface", "convert_npz",
    "convert_timm", "detect_format", "detect_source", "export_huggingface", "export_timm", "find_pretrained",
    "is_checkpoint_name", "list_pretrained", "load_pretrained", "load_weights", "model_from_name", "model_weights",
    "read_checkpoint", "read_safetensors", "register_pretrained", "resample_position_embeddings", "resize_model",
    "to_huggingface", "to_timm", "write_safetensors",
]
