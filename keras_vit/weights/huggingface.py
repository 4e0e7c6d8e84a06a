"""Hugging Face ``ViTForImageClassification`` / ``ViTModel`` weights <-> keras_vit (pure functions).

Names as ``save_pretrained`` writes them (transformers 5.23,
``models/vit/modeling_vit.py``): ``{p}embeddings.{cls_token, position_embeddings,
patch_embeddings.projection}``, ``{p}encoder.layer.{i}.layernorm_before``,
``.attention.attention.{query,key,value}`` (three ``Linear(D, D)``: our
``qkv`` kernel is ``[Wq^T | Wk^T | Wv^T]``), ``.attention.output.dense``,
``.layernorm_after``, ``.intermediate.dense``, ``.output.dense``;
``{p}layernorm`` (on all tokens); ``classifier`` (the head). ``{p}`` is
``"vit."`` in ``ViTForImageClassification`` and empty in ``ViTModel``, whose
``pooler.dense`` (Linear + tanh, not on the classification path) is ignored.
A file is recognised by ``vit.embeddings.patch_embeddings.projection.weight``
or ``embeddings.patch_embeddings.projection.weight``.

transformers 5 renamed the modules in memory: ``model.state_dict()`` (what a
``torch.save`` of it holds) names blocks ``{p}layers.{i}.{layernorm_before,
layernorm_after, attention.{q,k,v,o}_proj, mlp.fc1, mlp.fc2}``; both namings are
read (``save_pretrained`` still writes the names above, and so does our export).

Hugging Face's ``ViTConfig`` defaults to ``layer_norm_eps=1e-12`` (ours:
1e-6); its ``config.json`` says which, and ``load_weights`` checks it.

The rest of what we know about the source sits here too: the architecture a
``config.json`` describes (:func:`model_config`), the contract of its
``preprocessor_config.json`` (:func:`contract`) and the resampling rule of
``ViTEmbeddings.interpolate_pos_encoding`` (``RESAMPLING``).
"""

import warnings

import numpy as np

from keras_vit.weights import io, layout

# ViTEmbeddings.interpolate_pos_encoding: bicubic, align_corners=False, no antialias.
RESAMPLING = ("bicubic", False)
# ViTImageProcessor: IMAGENET_STANDARD_MEAN/STD (0.5), resample=BILINEAR.
DEFAULT_CONTRACT = ((0.5,) * 3, (0.5,) * 3, "bilinear")
_PIL_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
# transformers' ViTConfig defaults, for keys a config.json leaves out.
_CONFIG_DEFAULTS = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                    "image_size": 224, "patch_size": 16, "num_channels": 3, "layer_norm_eps": 1e-12}

PREFIXES = ("vit.", "")
ANCHOR = "embeddings.patch_embeddings.projection.weight"
_BLOCK = {
    "layernorm_before.weight": "norm1/gamma", "layernorm_before.bias": "norm1/beta",
    "attention.output.dense.weight": ("attention/proj/kernel", "T"),
    "attention.output.dense.bias": "attention/proj/bias",
    "layernorm_after.weight": "norm2/gamma", "layernorm_after.bias": "norm2/beta",
    "intermediate.dense.weight": ("mlp/fc1/kernel", "T"), "intermediate.dense.bias": "mlp/fc1/bias",
    "output.dense.weight": ("mlp/fc2/kernel", "T"), "output.dense.bias": "mlp/fc2/bias",
}
_QKV = ("query", "key", "value")
# transformers >= 5 in-memory names: block key -> ours, and the q/k/v projections.
_BLOCK_V5 = {
    "layernorm_before.weight": "norm1/gamma", "layernorm_before.bias": "norm1/beta",
    "attention.o_proj.weight": ("attention/proj/kernel", "T"), "attention.o_proj.bias": "attention/proj/bias",
    "layernorm_after.weight": "norm2/gamma", "layernorm_after.bias": "norm2/beta",
    "mlp.fc1.weight": ("mlp/fc1/kernel", "T"), "mlp.fc1.bias": "mlp/fc1/bias",
    "mlp.fc2.weight": ("mlp/fc2/kernel", "T"), "mlp.fc2.bias": "mlp/fc2/bias",
}
_QKV_V5 = ("q_proj", "k_proj", "v_proj")


def hf_prefix(keys) -> str:
    """``"vit."`` or ``""`` by the anchor key; raises ``KeyError`` when neither is present."""
    keys = set(keys)
    for prefix in PREFIXES:
        if prefix + ANCHOR in keys:
            return prefix
    raise KeyError(f"No Hugging Face ViT anchor key ({' or '.join(p + ANCHOR for p in PREFIXES)}).")


def _table(prefix, num_blocks, v5=False):
    table = {
        f"{prefix}embeddings.cls_token": layout.CLASS_TOKEN,
        f"{prefix}embeddings.position_embeddings": layout.POSITION_EMBEDDINGS,
        f"{prefix}embeddings.patch_embeddings.projection.bias": layout.PATCH_BIAS,
        f"{prefix}layernorm.weight": "head/norm/gamma", f"{prefix}layernorm.bias": "head/norm/beta",
        "classifier.weight": ("head/head/kernel", "T"), "classifier.bias": "head/head/bias",
    }
    for i in range(num_blocks):
        table.update({f"{_layer(prefix, i, v5)}{k}": (layout.block(i, v[0]), "T") if isinstance(v, tuple)
                      else layout.block(i, v) for k, v in (_BLOCK_V5 if v5 else _BLOCK).items()})
    return table


def _layer(prefix, i, v5=False):
    return f"{prefix}layers.{i}." if v5 else f"{prefix}encoder.layer.{i}."


def _attention(prefix, i, v5=False):
    return _layer(prefix, i, v5) + ("attention." if v5 else "attention.attention.")


def convert_huggingface(state: dict) -> layout.Converted:
    """A Hugging Face ViT state dict (name -> array) -> keras_vit weights.

    Returns:
        ``Converted(weights, unexpected, ignored, facts)`` keyed by our weight paths.

    Example:
        >>> import numpy as np
        >>> w = np.zeros((8, 3, 2, 2), "float32")
        >>> sorted(convert_huggingface({"vit." + ANCHOR: w}).weights)
        ['patch_encoder/projection/kernel']
    """
    prefix = hf_prefix(state)
    v5 = prefix + "layers.0.layernorm_before.weight" in state
    num_blocks = layout.count_blocks(state, _layer(prefix, "{}", v5) + "layernorm_before.weight")
    weights = {}
    used = layout.map_keys(state, _table(prefix, num_blocks, v5), weights)
    weights[layout.PATCH_KERNEL] = layout.conv_to_dense(np.asarray(state[prefix + ANCHOR]))
    used.add(prefix + ANCHOR)
    for i in range(num_blocks):
        base = _attention(prefix, i, v5)
        for part, suffix in (("kernel", "weight"), ("bias", "bias")):
            keys = [f"{base}{n}.{suffix}" for n in (_QKV_V5 if v5 else _QKV)]
            if all(k in state for k in keys):
                arrays = [np.asarray(state[k]) for k in keys]
                weights[layout.block(i, f"attention/qkv/{part}")] = (
                    np.concatenate([a.T for a in arrays], axis=1) if part == "kernel" else np.concatenate(arrays)
                )
                used.update(keys)
    ignored = sorted(k for k in state if k.startswith("pooler."))
    return layout.Converted(weights, sorted(set(state) - used - set(ignored)), ignored, {})


def to_huggingface(weights: dict, patch_size: int, channels: int) -> dict:
    """keras_vit weights -> a Hugging Face state dict: ``ViTForImageClassification`` names when the
    weights have a head, ``ViTModel`` names (no ``vit.`` prefix, no pooler) when they do not."""
    prefix = "vit." if "head/head/kernel" in weights else ""
    num_blocks = layout.count_blocks(weights, "block_{}/norm1/gamma")
    state = {}
    for key, target in _table(prefix, num_blocks).items():
        name = target[0] if isinstance(target, tuple) else target
        if name in weights:
            value = np.asarray(weights[name])
            state[key] = np.ascontiguousarray(value.T if isinstance(target, tuple) else value)
    if layout.PATCH_KERNEL in weights:
        state[prefix + ANCHOR] = np.ascontiguousarray(
            layout.dense_to_conv(weights[layout.PATCH_KERNEL], patch_size, channels))
    for i in range(num_blocks):
        kernel = np.asarray(weights[layout.block(i, "attention/qkv/kernel")])
        bias = np.asarray(weights[layout.block(i, "attention/qkv/bias")])
        for n, k, b in zip(_QKV, np.split(kernel, 3, axis=1), np.split(bias, 3)):
            state[f"{_attention(prefix, i)}{n}.weight"] = np.ascontiguousarray(k.T)
            state[f"{_attention(prefix, i)}{n}.bias"] = np.ascontiguousarray(b)
    return state


def model_config(cfg: dict) -> dict:
    """``VisionTransformer`` arguments from a transformers ``config.json`` (sizes, ``layer_norm_eps``,
    ``id2label`` -> class names; ``ViTModel``: no head)."""
    c = {**_CONFIG_DEFAULTS, **cfg}
    config = {"image_size": c["image_size"], "patch_size": c["patch_size"], "channels": c["num_channels"],
              "hidden_dim": c["hidden_size"], "num_layers": c["num_hidden_layers"],
              "num_heads": c["num_attention_heads"], "mlp_dim": c["intermediate_size"],
              "layer_norm_epsilon": c["layer_norm_eps"]}
    if (cfg.get("architectures") or ["ViTForImageClassification"])[0] == "ViTModel":
        config["num_classes"] = 0
        return config
    labels = {int(k): v for k, v in (cfg.get("id2label") or {}).items()}
    config["num_classes"] = len(labels) or cfg.get("num_labels", 2)
    names = [labels[i] for i in range(len(labels))] if sorted(labels) == list(range(len(labels))) else []
    if names and names != [f"LABEL_{i}" for i in range(len(names))]:
        config["class_names"] = names
    return config


def contract(path: str) -> tuple:
    """``(mean, std, interpolation)`` of the ``preprocessor_config.json`` beside ``path``, else ViTImageProcessor's."""
    mean, std, interpolation = DEFAULT_CONTRACT
    cfg = io.read_sidecar(path, "preprocessor_config.json") or {}
    return (cfg.get("image_mean", mean), cfg.get("image_std", std),
            _PIL_RESAMPLE.get(cfg.get("resample"), interpolation))


def mismatches(path: str, model) -> list:
    """What ``config.json`` says that shapes cannot show (heads, activation, qkv bias); warns on another epsilon."""
    cfg = io.read_sidecar(path, "config.json") or {}
    expected = {"num_attention_heads": model.num_heads, "hidden_act": "gelu", "qkv_bias": True}
    found = [(k, cfg[k], v) for k, v in expected.items() if k in cfg and cfg[k] != v]
    eps = cfg.get("layer_norm_eps")
    if eps is not None and abs(eps - model.layer_norm_epsilon) > 1e-15:
        warnings.warn(
            f"{path}: the checkpoint's LayerNorm epsilon is {eps}, the model's {model.layer_norm_epsilon}; "
            f"outputs differ slightly. Build the model with layer_norm_epsilon={eps} to match exactly.",
            stacklevel=4,
        )
    return found
