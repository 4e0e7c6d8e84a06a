"""Named ViT variants in two notations, and ``list_models``: a plain table, pure Python.

``keras_vit.factory.create_model`` builds them; this module imports nothing of keras_vit and no
TensorFlow, so ``keras-vit models`` and ``list_models`` stay instant.

Widths, depths, heads and MLP sizes are Table 1 of the paper (Ti from DeiT /
AugReg). Each variant has a canonical name (``vit_base_patch16_224``) and the
paper's notation (``"B/16"``; ``"B/16@384"`` for another resolution).
"""

import difflib
import fnmatch
import re

# paper notation: (long name, hidden_dim D, num_layers L, num_heads, mlp_dim)
SIZES = {
    "Ti": ("tiny", 192, 12, 3, 768),
    "S": ("small", 384, 12, 6, 1536),
    "B": ("base", 768, 12, 12, 3072),
    "L": ("large", 1024, 24, 16, 4096),
    "H": ("huge", 1280, 32, 16, 5120),
}

_VARIANTS = {}
_NOTATION = {}


def register_variant(name: str, notation=None, **config):
    """Adds a named variant; ``create_model(name)`` builds it from ``config``."""
    if name in _VARIANTS:
        raise ValueError(f"Variant {name!r} is already registered.")
    _VARIANTS[name] = dict(config)
    if notation:
        _NOTATION[notation] = name


def _register_paper_variants():
    for short, (long_name, dim, depth, heads, mlp) in SIZES.items():
        dims = dict(hidden_dim=dim, num_layers=depth, num_heads=heads, mlp_dim=mlp)
        patches = (14,) if short == "H" else (16, 32)
        for patch in patches:
            for size in (224,) if short == "H" else (224, 384):
                notation = f"{short}/{patch}" + ("" if size == 224 else f"@{size}")
                register_variant(
                    f"vit_{long_name}_patch{patch}_{size}", notation,
                    image_size=size, patch_size=patch, num_classes=1000, **dims,
                )
        if short in ("Ti", "S", "B"):  # CIFAR-sized: 32x32 images, 4x4 patches, 10 classes
            register_variant(
                f"vit_{long_name}_patch4_32", f"{short}/4",
                image_size=32, patch_size=4, num_classes=10, **dims,
            )


_register_paper_variants()
# The CIFAR benchmark model of benchmarks/: Ti width at half depth.
register_variant(
    "vit_cifar_patch4_32", None, image_size=32, patch_size=4, num_classes=10,
    hidden_dim=192, num_layers=6, num_heads=3, mlp_dim=768,
)
# The quickstart model: 8x8 grayscale digits (scikit-learn's bundled data set).
register_variant(
    "vit_digits_patch2_8", None, image_size=8, patch_size=2, channels=1, num_classes=10,
    hidden_dim=64, num_layers=4, num_heads=4, mlp_dim=256,
)
# A tiny model for tests: builds and runs in milliseconds.
register_variant(
    "vit_test", None, image_size=32, patch_size=8, num_classes=10,
    hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=128,
)

# The hybrid architecture (paper Sec. 3.1): a convolutional stem, its feature map cut into 1x1 patches.
# Tokens are pooled by their mean (CCT drops the [class] token too; it also quantizes better, see tflite tests).
# CIFAR, CCT's two-conv tokenizer (8x8 tokens); training/configs/cifar10_hour.py trains it.
register_variant(
    "vit_hybrid_cifar_conv3x2_32", None, image_size=32, patch_size=1, num_classes=10, stem="conv3x2",
    hidden_dim=128, num_layers=4, num_heads=2, mlp_dim=256, pooling="gap",
)
# CIFAR, CCT-7/3x1's size and one-conv tokenizer (16x16 tokens, Hassani et al. 2021); training/configs/cifar10_gpu.py
# trains it (its results live in benchmarks/RESULTS.md, not here).
register_variant(
    "vit_hybrid_cifar_conv3x1_32", None, image_size=32, patch_size=1, num_classes=10,
    stem={"filters": [256], "kernel_size": 3, "strides": 1, "pooling": "max"},
    hidden_dim=256, num_layers=7, num_heads=4, mlp_dim=512, pooling="gap",
)
# ImageNet size, Ti width and depth on a stride-16 convolutional stem (Xiao et al. 2021): the 14x14 grid of Ti/16.
register_variant(
    "vit_hybrid_tiny_conv16_224", None, image_size=224, patch_size=1, num_classes=1000, stem="conv16",
    hidden_dim=192, num_layers=12, num_heads=3, mlp_dim=768,
)
# A tiny hybrid for tests.
register_variant(
    "vit_hybrid_test", None, image_size=32, patch_size=1, num_classes=10, stem={"filters": [8, 16]},
    hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64, pooling="gap",
)

_NOTATION_RE = re.compile(r"^(Ti|S|B|L|H)/(\d+)(?:@(\d+))?$")


def resolve_name(name: str) -> str:
    """Returns the canonical variant name for ``name`` (either notation).

    Raises:
        ValueError: for an unknown name, listing the closest registered names.
    """
    if not isinstance(name, str):
        raise TypeError(f"A variant name must be a string; received {name!r}.")
    if name in _VARIANTS:
        return name
    if name in _NOTATION:
        return _NOTATION[name]
    known = sorted(_VARIANTS) + sorted(_NOTATION)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown ViT variant {name!r}.{hint} "
        f"keras_vit.list_models() lists all {len(_VARIANTS)} variants."
    )


def variant_config(name: str) -> dict:
    """The constructor arguments of a registered variant (a copy)."""
    return dict(_VARIANTS[resolve_name(name)])


def list_models(pattern=None) -> list:
    """Sorted canonical names of the registered variants, filtered by a glob.

    Example:
        >>> list_models("vit_tiny_*")[:2]
        ['vit_tiny_patch16_224', 'vit_tiny_patch16_384']
    """
    names = sorted(_VARIANTS)
    if pattern is None:
        return names
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def notation_of(name: str):
    """The paper notation of a variant (``"B/16"``), or ``None``."""
    name = resolve_name(name)
    return next((k for k, v in _NOTATION.items() if v == name), None)
