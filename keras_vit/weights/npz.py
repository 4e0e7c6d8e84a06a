"""The original ViT / AugReg ``.npz`` checkpoints -> keras_vit weights (a pure function).

Names (flax parameter paths joined by ``/``; google-research/vision_transformer
``vit_jax/models_vit.py``, and timm's ``_load_weights`` reader): ``embedding/
{kernel (P,P,C,D), bias}``, ``cls`` (1,1,D), ``Transformer/posembed_input/
pos_embedding`` (1,N+1,D), ``Transformer/encoderblock_{i}/LayerNorm_0`` (before
attention), ``.../MultiHeadDotProductAttention_1/{query,key,value}/kernel``
(D, heads, D/heads) and ``/bias`` (heads, D/heads), ``.../out/kernel`` (heads,
D/heads, D), ``.../LayerNorm_2`` (before the MLP), ``.../MlpBlock_3/Dense_{0,1}``,
``Transformer/encoder_norm``, ``pre_logits`` (Dense + tanh, in the i21k
checkpoints), ``head``. LayerNorm ``scale``/``bias`` are our ``gamma``/``beta``;
flax ``Dense`` kernels are ``(in, out)`` like ours. Checkpoints written by
vit_jax's ``train.py`` keep the same names under ``opt/target/``.

Only ``classifier="token"`` checkpoints (a ``cls`` parameter) map onto
keras_vit; big_vision's layout (``params/...``, stacked blocks) is refused.

An ``.npz`` travels without a config file, so its architecture is read from
the array shapes (:func:`model_config`; a pre-logits layer means vit_jax's tanh
head); its contract is vit_jax's [-1, 1] inputs and its resampling timm's
``.npz`` reader's (``RESAMPLING``).
"""

import math
import re

import numpy as np

from keras_vit.weights import io, layout

# timm's _load_weights resamples an .npz's position embeddings bilinearly, without antialias.
RESAMPLING = ("bilinear", False)
# vit_jax feeds [-1, 1].
DEFAULT_CONTRACT = ((0.5,) * 3, (0.5,) * 3, "bilinear")

PREFIXES = ("", "opt/target/")
ANCHOR = "embedding/kernel"
_BLOCK = {
    "LayerNorm_0/scale": "norm1/gamma", "LayerNorm_0/bias": "norm1/beta",
    "LayerNorm_2/scale": "norm2/gamma", "LayerNorm_2/bias": "norm2/beta",
    "MlpBlock_3/Dense_0/kernel": "mlp/fc1/kernel", "MlpBlock_3/Dense_0/bias": "mlp/fc1/bias",
    "MlpBlock_3/Dense_1/kernel": "mlp/fc2/kernel", "MlpBlock_3/Dense_1/bias": "mlp/fc2/bias",
    "MultiHeadDotProductAttention_1/out/bias": "attention/proj/bias",
}
_TOP = {
    "embedding/bias": layout.PATCH_BIAS, "cls": layout.CLASS_TOKEN,
    "Transformer/posembed_input/pos_embedding": layout.POSITION_EMBEDDINGS,
    "Transformer/encoder_norm/scale": "head/norm/gamma", "Transformer/encoder_norm/bias": "head/norm/beta",
    "pre_logits/kernel": "head/pre_logits/kernel", "pre_logits/bias": "head/pre_logits/bias",
    "head/kernel": "head/head/kernel", "head/bias": "head/head/bias",
}
_ATTENTION = "MultiHeadDotProductAttention_1/"


def npz_prefix(keys) -> str:
    """``""`` or ``"opt/target/"`` by the ``embedding/kernel`` anchor; ``KeyError`` when absent."""
    keys = set(keys)
    for prefix in PREFIXES:
        if prefix + ANCHOR in keys:
            return prefix
    if any(k.startswith("params/") for k in keys):
        raise KeyError("This .npz is a big_vision checkpoint (params/...); keras_vit reads the vit_jax/AugReg layout.")
    raise KeyError(f"No original-ViT anchor key ({' or '.join(p + ANCHOR for p in PREFIXES)}).")


def convert_npz(arrays: dict) -> layout.Converted:
    """Original ViT ``.npz`` arrays (name -> array) -> keras_vit weights.

    Returns:
        ``Converted(weights, unexpected, ignored, facts)``; ``facts["num_heads"]``
        is read from the attention kernels' shape.

    Example:
        >>> import numpy as np
        >>> out = convert_npz({"embedding/kernel": np.zeros((16, 16, 3, 192), "float32")})
        >>> out.weights["patch_encoder/projection/kernel"].shape
        (768, 192)
    """
    prefix = npz_prefix(arrays)
    source = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    if "cls" not in source and "Transformer/posembed_input/pos_embedding" in source:
        raise ValueError(
            "This .npz has no 'cls' parameter: it is a classifier='gap' model without a class token, "
            "which keras_vit (always a class token) cannot reproduce."
        )
    num_blocks = layout.count_blocks(source, "Transformer/encoderblock_{}/LayerNorm_0/scale")
    table = dict(_TOP)
    for i in range(num_blocks):
        table.update({f"Transformer/encoderblock_{i}/{k}": layout.block(i, v) for k, v in _BLOCK.items()})
    weights, facts = {}, {}
    used = layout.map_keys(source, table, weights)
    kernel = np.asarray(source[ANCHOR])
    weights[layout.PATCH_KERNEL] = kernel.reshape(-1, kernel.shape[-1])
    used.add(ANCHOR)
    for i in range(num_blocks):
        base = f"Transformer/encoderblock_{i}/{_ATTENTION}"
        kernels = [f"{base}{n}/kernel" for n in ("query", "key", "value")]
        biases = [f"{base}{n}/bias" for n in ("query", "key", "value")]
        if all(k in source for k in kernels + biases):
            q = np.asarray(source[kernels[0]])
            facts.setdefault("num_heads", int(q.shape[1]))
            weights[layout.block(i, "attention/qkv/kernel")] = np.concatenate(
                [np.asarray(source[k]).reshape(q.shape[0], -1) for k in kernels], axis=1)
            weights[layout.block(i, "attention/qkv/bias")] = np.concatenate(
                [np.asarray(source[k]).reshape(-1) for k in biases])
            used.update(kernels + biases)
        if f"{base}out/kernel" in source:
            out = np.asarray(source[f"{base}out/kernel"])
            weights[layout.block(i, "attention/proj/kernel")] = out.reshape(-1, out.shape[-1])
            used.add(f"{base}out/kernel")
    unexpected = sorted(prefix + k for k in set(source) - used)
    ignored = sorted(k for k in arrays if not k.startswith(prefix))
    return layout.Converted(weights, unexpected, ignored, facts)


def model_config(path: str) -> dict:
    """``VisionTransformer`` arguments read from an ``.npz``'s array shapes."""
    io.detect_format(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            p = npz_prefix(arrays.files)
            block = f"{p}Transformer/encoderblock_0/"
            patch, _, channels, dim = arrays[p + ANCHOR].shape
            tokens = arrays[p + "Transformer/posembed_input/pos_embedding"].shape[1]
            heads = arrays[block + _ATTENTION + "query/kernel"].shape[1]
            mlp = arrays[block + "MlpBlock_3/Dense_0/kernel"].shape[1]
            head = arrays[p + "head/kernel"].shape[1] if p + "head/kernel" in arrays.files else 0
            rep = arrays[p + "pre_logits/kernel"].shape[1] if p + "pre_logits/kernel" in arrays.files else None
            layers = sum(1 for k in arrays.files if re.fullmatch(
                re.escape(p) + r"Transformer/encoderblock_\d+/LayerNorm_0/scale", k))
    except KeyError as error:
        raise ValueError(f"{path!r} is not an original ViT .npz: {error.args[0]}") from None
    config = {"image_size": math.isqrt(tokens - 1) * patch, "patch_size": patch, "channels": channels,
              "hidden_dim": dim, "num_layers": layers, "num_heads": heads, "mlp_dim": mlp, "num_classes": head}
    if rep:
        config.update(representation_size=rep, representation_activation="tanh")
    return config


def contract(path: str) -> tuple:
    """``(mean, std, interpolation)``: vit_jax's, as no config file travels with an ``.npz``."""
    return DEFAULT_CONTRACT


def mismatches(path: str, model) -> list:
    """Nothing beyond the shapes and the heads count (``facts``) to check for an ``.npz``."""
    return []
