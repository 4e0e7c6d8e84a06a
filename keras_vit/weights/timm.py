"""timm ``VisionTransformer`` state dicts <-> keras_vit weights (pure dict-to-dict functions).

timm names (timm 1.0, ``timm/models/vision_transformer.py``): ``cls_token``
(1,1,D), ``pos_embed`` (1,N+1,D), ``patch_embed.proj.{weight (D,C,P,P),bias}``,
``blocks.{i}.norm1``, ``blocks.{i}.attn.qkv`` ((3D, D), rows [q|k|v], heads
contiguous: our ``qkv`` kernel is its transpose), ``blocks.{i}.attn.proj``,
``blocks.{i}.norm2``, ``blocks.{i}.mlp.fc1``, ``blocks.{i}.mlp.fc2``, ``norm``
(LayerNorm on all tokens), ``head``; legacy ``pre_logits.fc`` (Linear + tanh).
A state dict is recognised by its ``patch_embed.proj.weight`` key.

``fc_norm`` (timm's ``global_pool="avg"`` default: pool, then normalize) has
no keras_vit equivalent (our ``"gap"`` normalizes, then pools): such a file is
refused. ``global_pool="avg", fc_norm=False`` equals our ``pooling="gap"``.

Everything else about the source lives here too: the architecture a hub
``config.json`` describes (:func:`model_config`), the input contract its
``pretrained_cfg`` states or timm's default (:func:`contract`), and timm's
position-embedding resampling rule (``RESAMPLING``).
"""

import numpy as np

from keras_vit.registry import list_models, variant_config
from keras_vit.weights import io, layout

ANCHOR = "patch_embed.proj.weight"
# timm's checkpoint_filter_fn resamples with resample_abs_pos_embed: bicubic, antialiased.
RESAMPLING = ("bicubic", True)
# timm's vision_transformer _cfg: IMAGENET_INCEPTION_MEAN/STD (0.5), bicubic.
DEFAULT_CONTRACT = ((0.5,) * 3, (0.5,) * 3, "bicubic")
# timm model_args -> VisionTransformer arguments
_ARGS = {"img_size": "image_size", "patch_size": "patch_size", "in_chans": "channels", "num_classes": "num_classes",
         "embed_dim": "hidden_dim", "depth": "num_layers", "num_heads": "num_heads"}
_POOLING = {"token": "token", "avg": "gap"}
_BLOCK = {
    "norm1.weight": "norm1/gamma", "norm1.bias": "norm1/beta",
    "attn.qkv.weight": ("attention/qkv/kernel", "T"), "attn.qkv.bias": "attention/qkv/bias",
    "attn.proj.weight": ("attention/proj/kernel", "T"), "attn.proj.bias": "attention/proj/bias",
    "norm2.weight": "norm2/gamma", "norm2.bias": "norm2/beta",
    "mlp.fc1.weight": ("mlp/fc1/kernel", "T"), "mlp.fc1.bias": "mlp/fc1/bias",
    "mlp.fc2.weight": ("mlp/fc2/kernel", "T"), "mlp.fc2.bias": "mlp/fc2/bias",
}
_TOP = {
    "cls_token": layout.CLASS_TOKEN, "pos_embed": layout.POSITION_EMBEDDINGS,
    "patch_embed.proj.bias": layout.PATCH_BIAS,
    "norm.weight": "head/norm/gamma", "norm.bias": "head/norm/beta",
    "pre_logits.fc.weight": ("head/pre_logits/kernel", "T"), "pre_logits.fc.bias": "head/pre_logits/bias",
    "head.weight": ("head/head/kernel", "T"), "head.bias": "head/head/bias",
}


def _table(num_blocks):
    table = dict(_TOP)
    for i in range(num_blocks):
        table.update({f"blocks.{i}.{k}": (layout.block(i, v[0]), "T") if isinstance(v, tuple)
                      else layout.block(i, v) for k, v in _BLOCK.items()})
    return table


def convert_timm(state: dict) -> layout.Converted:
    """A timm ViT state dict (name -> array) -> keras_vit weights.

    Args:
        state: e.g. ``{k: v.numpy() for k, v in timm_model.state_dict().items()}``.

    Returns:
        ``Converted(weights, unexpected, ignored, facts)``; ``weights`` is keyed
        by our weight paths.

    Raises:
        ValueError: a timm model with ``fc_norm`` (pool-then-normalize).

    Example:
        >>> import numpy as np
        >>> out = convert_timm({"cls_token": np.zeros((1, 1, 8), "float32")})
        >>> list(out.weights)
        ['patch_encoder/class_token']
    """
    if any(k.startswith("fc_norm.") for k in state):
        raise ValueError(
            "This timm checkpoint has fc_norm (global_pool='avg': mean of tokens, then LayerNorm). "
            "keras_vit's pooling='gap' applies LayerNorm to every token before the mean, a different function; "
            "only timm models with global_pool='token', or 'avg' with fc_norm=False, can be loaded."
        )
    weights = {}
    used = layout.map_keys(state, _table(layout.count_blocks(state, "blocks.{}.norm1.weight")), weights)
    if ANCHOR in state:
        kernel = np.asarray(state[ANCHOR])
        if kernel.ndim != 4:
            raise ValueError(f"timm {ANCHOR} must be a (D, C, P, P) convolution weight; received shape {kernel.shape}.")
        weights[layout.PATCH_KERNEL] = layout.conv_to_dense(kernel)
        used.add(ANCHOR)
    return layout.Converted(weights, sorted(set(state) - used), [], {})


def to_timm(weights: dict, patch_size: int, channels: int) -> dict:
    """keras_vit weights (our path -> array) -> a timm ``VisionTransformer`` state dict.

    The inverse of :func:`convert_timm`: ``convert_timm(to_timm(w, P, C)).weights == w``.
    """
    inverse = {}
    for key, target in _table(layout.count_blocks(weights, "block_{}/norm1/gamma")).items():
        name = target[0] if isinstance(target, tuple) else target
        if name in weights:
            value = np.asarray(weights[name])
            inverse[key] = np.ascontiguousarray(value.T if isinstance(target, tuple) else value)
    if layout.PATCH_KERNEL in weights:
        inverse[ANCHOR] = np.ascontiguousarray(layout.dense_to_conv(weights[layout.PATCH_KERNEL], patch_size, channels))
    return inverse


def model_config(cfg: dict) -> dict:
    """``VisionTransformer`` arguments from a timm hub ``config.json`` (``architecture``, ``model_args``,
    ``pretrained_cfg.input_size``, ``num_classes``, ``global_pool``, ``label_names``)."""
    arch, args = cfg.get("architecture"), dict(cfg.get("model_args") or {})
    if arch not in list_models() and not {"embed_dim", "depth", "num_heads", "patch_size"} <= set(args):
        raise ValueError(f"timm architecture {arch!r} is not a keras_vit variant and config.json has no model_args; "
                         f"build the model yourself and call load_weights.")
    config = variant_config(arch) if arch in list_models() else {}
    pre = cfg.get("pretrained_cfg") or {}
    if pre.get("input_size"):
        config["channels"], config["image_size"] = pre["input_size"][0], tuple(pre["input_size"][1:])
    config.update({ours: args[theirs] for theirs, ours in _ARGS.items() if theirs in args})
    if "mlp_ratio" in args:
        config["mlp_dim"] = int(round(config["hidden_dim"] * args["mlp_ratio"]))
    config["num_classes"] = cfg.get("num_classes", config.get("num_classes", 1000))
    pool = args.get("global_pool", cfg.get("global_pool"))
    config["pooling"] = _POOLING.get(pool, config.get("pooling", "token"))
    labels = cfg.get("label_names")
    if labels and len(labels) == config["num_classes"]:
        config["class_names"] = list(labels)
    return config


def contract(path: str) -> tuple:
    """``(mean, std, interpolation)``: the ``pretrained_cfg`` of the ``config.json`` beside ``path``, else timm's."""
    mean, std, interpolation = DEFAULT_CONTRACT
    cfg = (io.read_sidecar(path, "config.json") or {}).get("pretrained_cfg") or {}
    return cfg.get("mean", mean), cfg.get("std", std), cfg.get("interpolation", interpolation)


def mismatches(path: str, model) -> list:
    """What the ``config.json`` says that shapes cannot show: a ``global_pool`` other than the model's pooling."""
    pool = (io.read_sidecar(path, "config.json") or {}).get("global_pool")
    ours = _POOLING.get(pool, pool)
    if pool is not None and ours != model.pooling:
        return [("pooling", f"global_pool={pool!r}", f"pooling={model.pooling!r}")]
    return []
