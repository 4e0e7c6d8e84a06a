"""Saving a keras_vit model in the timm and Hugging Face layouts (``model.safetensors`` + config files).

Each export writes a folder the source library reads directly:
``timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=...), **model_args)``
and ``transformers.ViTForImageClassification.from_pretrained(folder)``
(the ``test_export_is_read_by_*`` tests in tests/test_weights_timm.py and
tests/test_weights_huggingface.py compare their logits with ours). Files are
written with :mod:`keras_vit.atomic`, so an interrupted export leaves no
half-written file.
"""

import json
import os

import numpy as np

from keras_vit.atomic import atomic_write
from keras_vit.preprocessing import Preprocessing
from keras_vit.weights.huggingface import to_huggingface
from keras_vit.weights.safetensors_io import write_safetensors
from keras_vit.weights.timm import to_timm

WEIGHTS_FILE = "model.safetensors"


def model_weights(model) -> dict:
    """Our weight path -> float NumPy array, for every weight of ``model``."""
    return {v.path: np.asarray(v.numpy()) for v in model.weights}


def _write_json(path, data):
    atomic_write(path, json.dumps(data, indent=2))


def _square_size(model, target):
    size = model.input_shape[1:3]
    if size[0] != size[1]:
        raise ValueError(f"{target} export needs a square image; the model takes {size[0]}x{size[1]}.")
    return size[0]


def _contract(model, preprocessing):
    return preprocessing or Preprocessing.for_model(model)


def export_timm(model, directory: str, preprocessing=None) -> str:
    """Writes ``directory/model.safetensors`` (timm state dict) and ``config.json``; returns the weights path.

    ``config.json`` follows timm's hub files: ``architecture``, ``num_classes``,
    ``num_features``, ``global_pool``, ``model_args`` (pass them to
    ``timm.create_model``) and ``pretrained_cfg`` (input size, mean, std).

    Raises:
        ValueError: a pre-logits layer (timm's ViT has none) or a non-square image.
    """
    if model.representation_size:
        raise ValueError("timm's VisionTransformer has no pre-logits layer; export a model built without "
                         f"representation_size (this one has {model.representation_size}).")
    size = _square_size(model, "timm")
    contract = _contract(model, preprocessing)
    os.makedirs(directory, exist_ok=True)
    state = to_timm(model_weights(model), model.patch_size, model.channels)
    path = os.path.join(directory, WEIGHTS_FILE)
    write_safetensors(path, state, {"format": "pt"})
    pool = {"token": "token", "gap": "avg"}[model.pooling]
    model_args = {
        "img_size": size, "patch_size": model.patch_size, "in_chans": model.channels,
        "num_classes": model.num_classes, "embed_dim": model.hidden_dim, "depth": model.num_layers,
        "num_heads": model.num_heads, "mlp_ratio": model.mlp_dim / model.hidden_dim, "global_pool": pool,
        "fc_norm": False,
    }
    _write_json(os.path.join(directory, "config.json"), {
        # timm needs a registered entry point; model_args override every size it sets.
        "architecture": "vit_base_patch16_224", "num_classes": model.num_classes,
        "num_features": model.hidden_dim, "global_pool": pool, "model_args": model_args,
        "pretrained_cfg": {"input_size": [model.channels, size, size], "interpolation": contract.interpolation,
                           "mean": list(contract.mean), "std": list(contract.std), "num_classes": model.num_classes},
    })
    return path


def export_huggingface(model, directory: str, preprocessing=None, labels=None) -> str:
    """Writes ``model.safetensors``, ``config.json`` and ``preprocessor_config.json`` for Hugging Face.

    A model with a head becomes ``ViTForImageClassification``; ``num_classes=0``
    becomes ``ViTModel`` (without the pooler).

    Raises:
        ValueError: ``pooling="gap"`` or a pre-logits layer (Hugging Face's ViT has neither).
    """
    if model.pooling != "token" or model.representation_size:
        raise ValueError("Hugging Face's ViT classifies from the [class] token with no pre-logits layer; this model "
                         f"has pooling={model.pooling!r}, representation_size={model.representation_size!r}.")
    size = _square_size(model, "Hugging Face")
    contract = _contract(model, preprocessing)
    os.makedirs(directory, exist_ok=True)
    state = to_huggingface(model_weights(model), model.patch_size, model.channels)
    path = os.path.join(directory, WEIGHTS_FILE)
    write_safetensors(path, state, {"format": "pt"})
    labels = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(model.num_classes)]
    config = {
        "architectures": ["ViTForImageClassification" if model.num_classes else "ViTModel"], "model_type": "vit",
        "hidden_size": model.hidden_dim, "num_hidden_layers": model.num_layers,
        "num_attention_heads": model.num_heads, "intermediate_size": model.mlp_dim, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
        "layer_norm_eps": model.layer_norm_epsilon, "image_size": size, "patch_size": model.patch_size,
        "num_channels": model.channels, "qkv_bias": True,
    }
    if model.num_classes:
        config["id2label"] = {str(i): name for i, name in enumerate(labels)}
        config["label2id"] = {name: i for i, name in enumerate(labels)}
    _write_json(os.path.join(directory, "config.json"), config)
    _write_json(os.path.join(directory, "preprocessor_config.json"), {
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
        "resample": {"bilinear": 2, "bicubic": 3}.get(contract.interpolation, 2), "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(contract.mean),
        "image_std": list(contract.std),
    })
    return path
