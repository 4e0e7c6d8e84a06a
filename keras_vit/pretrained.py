"""The known pretrained checkpoints by name: where each one lives, its input contract and its published accuracy.

Three kinds of names, one table:

* timm names, ``"<architecture>.<tag>"`` (``"vit_base_patch16_224.augreg2_in21k_ft_in1k"``): the Hugging Face
  Hub repository ``timm/<name>`` (safetensors + ``config.json``);
* ``"hf-hub:<org>/<repo>"``: any timm- or transformers-layout repository (``"hf-hub:google/vit-base-patch16-224"``);
* ``"npz:<bucket path>"``: an original Google release from the public bucket ``gs://vit_models``
  (``"npz:imagenet21k+imagenet2012/ViT-B_16"``; the AugReg files under ``"npz:augreg/..."``).

``top1`` is ImageNet-1k validation top-1 (%) from timm's ``results/results-imagenet.csv``
(huggingface/pytorch-image-models @ aa4b5850c1543fa488abf260f18390eda46cf85d, evaluated at the
checkpoint's own resolution and ``crop_pct``). An ``.npz`` row carries the number timm measured for the
same weights after converting that file (timm's ``default_cfgs`` name the file as the source); ``None``
where no published number was found (ImageNet-21k heads, and checkpoints timm does not list). Contracts
are timm's ``default_cfgs`` (``vit_*``: mean = std = 0.5, bicubic, ``crop_pct`` 0.9 at 224, 1.0 at 384) and
vit_jax's [-1, 1] inputs for the ``.npz`` files.

``sha256`` pins an ``.npz`` download. Where none is pinned yet (``None``), the first download's hash is
recorded in the cache and every later load is checked against it (keras_vit.weights.hub).

Example:
    >>> find_pretrained("vit_tiny_patch16_224.augreg_in21k_ft_in1k").top1
    75.452
    >>> find_pretrained("vit_base_patch16_224").name  # an architecture alone: timm's default tag
    'vit_base_patch16_224.augreg2_in21k_ft_in1k'
"""

import dataclasses
import difflib
import fnmatch
import importlib.resources

SOURCE = "timm results/results-imagenet.csv @ aa4b5850c1543fa488abf260f18390eda46cf85d"
HUB_PREFIX, NPZ_PREFIX = "hf-hub:", "npz:"


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One known checkpoint.

    Attributes:
        name: the name users pass (``create_model(name, pretrained=True)``).
        variant: the keras_vit variant of the architecture (``keras_vit.list_models()``).
        image_size, num_classes: what the checkpoint was trained for (0: no head).
        pretrain: ``"in1k"``, ``"in21k"`` or ``"in21k->in1k"``.
        top1: published ImageNet-1k top-1 (%), or ``None``.
        crop_pct: the evaluation's center-crop fraction behind ``top1``.
        sha256: the pinned hash of an ``.npz`` file (``None``: not pinned yet).
        repo: the Hub repository of a timm/hf-hub name (default ``timm/<name>``).
    """

    name: str
    variant: str
    image_size: int
    num_classes: int
    pretrain: str
    top1: float = None
    crop_pct: float = None
    sha256: str = None
    repo: str = None

    @property
    def source(self) -> str:
        """``"npz"`` (the Google bucket) or ``"hub"`` (the Hugging Face Hub)."""
        return "npz" if self.name.startswith(NPZ_PREFIX) else "hub"

    @property
    def location(self) -> str:
        """The Hub repository id, or the bucket path of an ``.npz`` (without ``.npz``)."""
        if self.source == "npz":
            return self.name[len(NPZ_PREFIX):]
        if self.repo:
            return self.repo
        return self.name[len(HUB_PREFIX):] if self.name.startswith(HUB_PREFIX) else f"timm/{self.name}"


_TABLE = {}


def register_pretrained(entry: Pretrained) -> Pretrained:
    """Adds a checkpoint to the table (tests register tiny stand-ins this way)."""
    if entry.name in _TABLE:
        raise ValueError(f"Pretrained checkpoint {entry.name!r} is already registered.")
    _TABLE[entry.name] = entry
    return entry


def _crop(size):
    return 0.9 if size == 224 else 1.0


# timm AugReg / original rows: (architecture, tag, top1). Per architecture the first row is timm's default tag
# (the order of timm's default_cfgs). num_classes: 1000, 21843 for AugReg in21k, 0 for timm's orig_in21k.
_TIMM = [
    ("vit_base_patch16_224", "augreg2_in21k_ft_in1k", 85.108),
    ("vit_tiny_patch16_224", "augreg_in21k_ft_in1k", 75.452),
    ("vit_tiny_patch16_384", "augreg_in21k_ft_in1k", 78.438),
    ("vit_small_patch32_224", "augreg_in21k_ft_in1k", 76.010),
    ("vit_small_patch32_384", "augreg_in21k_ft_in1k", 80.476),
    ("vit_small_patch16_224", "augreg_in21k_ft_in1k", 81.402),
    ("vit_small_patch16_384", "augreg_in21k_ft_in1k", 83.814),
    ("vit_base_patch32_224", "augreg_in21k_ft_in1k", 80.732),
    ("vit_base_patch32_384", "augreg_in21k_ft_in1k", 83.358),
    ("vit_base_patch16_224", "augreg_in21k_ft_in1k", 84.534),
    ("vit_base_patch16_384", "augreg_in21k_ft_in1k", 86.010),
    ("vit_large_patch16_224", "augreg_in21k_ft_in1k", 85.856),
    ("vit_large_patch16_384", "augreg_in21k_ft_in1k", 87.096),
    ("vit_base_patch16_224", "orig_in21k_ft_in1k", 81.782),
    ("vit_base_patch16_384", "orig_in21k_ft_in1k", 84.212),
    ("vit_large_patch32_384", "orig_in21k_ft_in1k", 81.508),
    ("vit_small_patch16_224", "augreg_in1k", 78.842),
    ("vit_small_patch16_384", "augreg_in1k", 81.130),
    ("vit_base_patch32_224", "augreg_in1k", 74.908),
    ("vit_base_patch32_384", "augreg_in1k", 78.750),
    ("vit_base_patch16_224", "augreg_in1k", 79.154),
    ("vit_base_patch16_384", "augreg_in1k", 81.102),
    ("vit_base_patch32_224", "orig_in21k", None),
    ("vit_base_patch16_224", "orig_in21k", None),
    ("vit_large_patch32_224", "orig_in21k", None),
    ("vit_large_patch16_224", "orig_in21k", None),
    ("vit_tiny_patch16_224", "augreg_in21k", None),
    ("vit_small_patch32_224", "augreg_in21k", None),
    ("vit_small_patch16_224", "augreg_in21k", None),
    ("vit_base_patch32_224", "augreg_in21k", None),
    ("vit_base_patch16_224", "augreg_in21k", None),
    ("vit_large_patch16_224", "augreg_in21k", None),
]
# The AugReg .npz behind each timm row (timm's default_cfgs url, under gs://vit_models/augreg/): the recipe part
# of the file name; the fine-tuned files append "--imagenet2012-steps_20k-lr_<lr>-res_<size>".
_AUGREG = {
    ("vit_tiny_patch16", "in21k"): ("Ti_16-i21k-300ep-lr_0.001-aug_none-wd_0.03-do_0.0-sd_0.0", "0.03"),
    ("vit_small_patch32", "in21k"): ("S_32-i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0", "0.03"),
    ("vit_small_patch16", "in21k"): ("S_16-i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0", "0.03"),
    ("vit_base_patch32", "in21k"): ("B_32-i21k-300ep-lr_0.001-aug_medium1-wd_0.03-do_0.0-sd_0.0", "0.03"),
    ("vit_base_patch16", "in21k"): ("B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0", "0.01"),
    ("vit_large_patch16", "in21k"): ("L_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.1-sd_0.1", "0.01"),
    ("vit_small_patch16", "in1k"): ("S_16-i1k-300ep-lr_0.001-aug_medium2-wd_0.1-do_0.0-sd_0.0", "0.01"),
    ("vit_base_patch32", "in1k"): ("B_32-i1k-300ep-lr_0.001-aug_medium2-wd_0.1-do_0.1-sd_0.1", "0.01"),
    ("vit_base_patch16", "in1k"): ("B_16-i1k-300ep-lr_0.001-aug_strong2-wd_0.1-do_0.1-sd_0.1", "0.01"),
}
# timm's vit_base_patch32_384.augreg_in21k_ft_in1k was fine-tuned from another B/32 pre-training run.
_AUGREG_B32_384 = "B_32-i21k-300ep-lr_0.001-aug_light1-wd_0.1-do_0.0-sd_0.0"
_PRETRAIN = {"augreg2_in21k_ft_in1k": "in21k->in1k", "augreg_in21k_ft_in1k": "in21k->in1k",
             "orig_in21k_ft_in1k": "in21k->in1k", "augreg_in1k": "in1k", "augreg_in21k": "in21k",
             "orig_in21k": "in21k"}
_CLASSES = {"augreg_in21k": 21843, "orig_in21k": 0}


def _augreg_file(architecture, tag):
    stem, size = architecture.rsplit("_", 1)
    data = "in1k" if tag == "augreg_in1k" else "in21k"
    if tag not in ("augreg_in21k_ft_in1k", "augreg_in1k", "augreg_in21k") or (stem, data) not in _AUGREG:
        return None
    recipe, lr = _AUGREG[(stem, data)]
    if architecture == "vit_base_patch32_384" and tag == "augreg_in21k_ft_in1k":
        recipe = _AUGREG_B32_384
    return recipe if tag == "augreg_in21k" else f"{recipe}--imagenet2012-steps_20k-lr_{lr}-res_{size}"


def _register_known():
    for architecture, tag, top1 in _TIMM:
        size = int(architecture.rsplit("_", 1)[1])
        common = dict(variant=architecture, image_size=size, num_classes=_CLASSES.get(tag, 1000),
                      pretrain=_PRETRAIN[tag], top1=top1, crop_pct=_crop(size) if top1 else None)
        register_pretrained(Pretrained(f"{architecture}.{tag}", **common))
        npz = _augreg_file(architecture, tag)
        if npz:
            register_pretrained(Pretrained(f"{NPZ_PREFIX}augreg/{npz}", **common))
    # The original releases (Dosovitskiy et al. 2021), gs://vit_models/imagenet21k{,+imagenet2012}/ViT-*.npz.
    # The ImageNet-21k files keep the pre-logits layer (Dense + tanh) before their 21843-class head.
    # Accuracies: timm's orig_in21k_ft_in1k rows, converted from these files (jx_vit_base_p16_224 and _384,
    # jx_vit_large_p32_384).
    for short, long_name in (("B", "base"), ("L", "large")):
        for patch in (16, 32):
            register_pretrained(Pretrained(f"{NPZ_PREFIX}imagenet21k/ViT-{short}_{patch}",
                                           f"vit_{long_name}_patch{patch}_224", 224, 21843, "in21k"))
            top1 = {("B", 16): 84.212, ("L", 32): 81.508}.get((short, patch))
            register_pretrained(Pretrained(f"{NPZ_PREFIX}imagenet21k+imagenet2012/ViT-{short}_{patch}",
                                           f"vit_{long_name}_patch{patch}_384", 384, 1000, "in21k->in1k",
                                           top1, _crop(384) if top1 else None))
        top1 = 81.782 if short == "B" else None
        register_pretrained(Pretrained(f"{NPZ_PREFIX}imagenet21k+imagenet2012/ViT-{short}_16-224",
                                       f"vit_{long_name}_patch16_224", 224, 1000, "in21k->in1k",
                                       top1, _crop(224) if top1 else None))
    # transformers-layout conversions of the original releases (no accuracy published in timm's tables).
    for repo, variant, classes, pretrain in (
        ("google/vit-base-patch16-224", "vit_base_patch16_224", 1000, "in21k->in1k"),
        ("google/vit-base-patch16-384", "vit_base_patch16_384", 1000, "in21k->in1k"),
        ("google/vit-large-patch16-224", "vit_large_patch16_224", 1000, "in21k->in1k"),
        ("google/vit-base-patch16-224-in21k", "vit_base_patch16_224", 0, "in21k"),
    ):
        size = int(variant.rsplit("_", 1)[1])
        register_pretrained(Pretrained(HUB_PREFIX + repo, variant, size, classes, pretrain))


_register_known()


def list_pretrained(pattern=None) -> list:
    """The known checkpoints (``Pretrained`` rows, table order), filtered by a glob over names."""
    return [e for e in _TABLE.values() if pattern is None or fnmatch.fnmatch(e.name, pattern)]


def close_names(name: str, n: int = 5) -> list:
    """The known names closest to ``name`` (difflib), for error messages."""
    return difflib.get_close_matches(name, list(_TABLE), n=n, cutoff=0.5)


def find_pretrained(name: str):
    """The table row for ``name``; an architecture alone (``"vit_base_patch16_224"``) gives its default tag.

    Returns ``None`` for a name the table does not hold (``hf-hub:``/``npz:`` names still download).
    """
    if name in _TABLE:
        return _TABLE[name]
    if "." not in name and ":" not in name:
        return next((e for e in _TABLE.values() if e.name.startswith(name + ".")), None)
    return None


def unknown_name_error(name: str) -> ValueError:
    """A ``ValueError`` for an unknown checkpoint name that lists the closest known names."""
    close = close_names(name)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown pretrained checkpoint {name!r}.{hint} `keras-vit models --pretrained` lists the "
        f"{len(_TABLE)} known names; any Hub repository loads as 'hf-hub:<org>/<repo>', any file of the "
        f"Google bucket as 'npz:<path without .npz>'."
    )


def imagenet1k_classes() -> list:
    """The 1000 ImageNet-1k class names in training-index order (WordNet lemmas, shipped with the package)."""
    text = importlib.resources.files("keras_vit").joinpath("data/imagenet1k_classes.tsv").read_text("utf-8")
    return [line.split("\t", 1)[1] for line in text.splitlines() if line and not line.startswith("#")]
