"""The top of the house: a name becomes a model here, and only here.

* :func:`resolve` decides once what a name, an ``hf-hub:`` / ``npz:`` reference or a path is:
  a ``Resolved`` variant, checkpoint or file. Every command and API asks it and is told; none
  guesses again.
* :func:`create_model` builds a variant (random weights, a checkpoint file, or its pretrained tag),
  and refuses keyword arguments the model does not take (with the close match).
* :func:`load_pretrained` fetches a checkpoint (``keras_vit.weights.hub``), builds the architecture its
  files describe (``keras_vit.weights.checkpoint_config``) and loads it (``keras_vit.weights.load_weights``).
* :func:`resize_model` rebuilds a model at another image size, resampling its position embeddings.

Example:
    >>> resolve("Ti/16")
    Resolved(kind='variant', name='vit_tiny_patch16_224', entry=None)
    >>> resolve("vit_tiny_patch16_224.augreg_in21k_ft_in1k").kind
    'checkpoint'
    >>> create_model("vit_test", num_classes=3).output_shape
    (None, 3)
"""

import dataclasses
import os
import re

import numpy as np

from keras_vit import pretrained as table
from keras_vit import registry
from keras_vit.model import VisionTransformer, check_arguments
from keras_vit.weights import hub
from keras_vit.weights.loader import checkpoint_config, load_weights
from keras_vit.weights.resample import resample_position_embeddings
from keras_vit.weights.safetensors_io import CorruptCheckpointError

KINDS = ("variant", "checkpoint", "file")
# A name with one of these endings names a file (missing or not).
FILE_SUFFIXES = (".keras", ".npz", ".safetensors", ".pth", ".bin", ".pt")
# What a checkpoint decides even when the caller names the variant (its dims stay the variant's).
_HEAD_KEYS = ("num_classes", "pooling", "representation_size", "representation_activation",
              "layer_norm_epsilon", "class_names")


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What a name is.

    Attributes:
        kind: ``"variant"`` (``name`` is canonical), ``"checkpoint"`` (a table name, ``hf-hub:`` or
            ``npz:``; ``entry`` is its table row or ``None``) or ``"file"`` (``name`` is the path).
    """

    kind: str
    name: str
    entry: object = None


def resolve(spec) -> Resolved:
    """Turns a name, an ``hf-hub:``/``npz:`` reference or a path into a variant, a checkpoint or a file.

    Order: an existing path; ``hf-hub:``/``npz:``; a name with a file suffix (``.keras``, ``.npz``,
    ``.safetensors``...), even when missing, so its reader says so; a checkpoint of the table
    (``"<variant>.<tag>"``); a variant in either notation (``"vit_tiny_patch16_224"``, ``"Ti/16"``); a
    missing path in a folder that exists.

    Raises:
        ValueError: an unknown ``"<variant>.<tag>"`` or variant name, listing the closest known names.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(f"A model name or path must be a string; received {spec!r}.")
    if os.path.exists(spec):
        return Resolved("file", spec)
    if spec.startswith((table.HUB_PREFIX, table.NPZ_PREFIX)):
        return Resolved("checkpoint", spec, table.find_pretrained(spec))
    if spec.endswith(FILE_SUFFIXES):  # "vit_test.keras" is a (missing) file, not the variant's tag "keras"
        return Resolved("file", spec)
    if "." in spec and spec.split(".", 1)[0] in registry.list_models():
        entry = table.find_pretrained(spec)
        if entry is None:
            raise table.unknown_name_error(spec)
        return Resolved("checkpoint", spec, entry)
    try:
        return Resolved("variant", registry.resolve_name(spec))
    except ValueError:
        if os.path.isdir(os.path.dirname(spec) or "\0"):
            return Resolved("file", spec)
        raise


def create_model(variant: str, /, weights=None, pretrained: bool = False, **overrides):
    """Builds a registered variant; keyword arguments override its config.

    Args:
        variant: a canonical name (``"vit_tiny_patch16_224"``) or the paper's
            notation (``"Ti/16"``, ``"B/16@384"``); or a checkpoint name
            (``"vit_base_patch16_224.augreg2_in21k_ft_in1k"``, ``"hf-hub:<org>/<repo>"``,
            ``"npz:<bucket path>"``; ``keras-vit models --pretrained`` lists them): the
            checkpoint's own architecture, contract and class names. Keras' own ``name=``
            names the model (default: the canonical variant name).
        weights: a checkpoint file (``.npz``, timm or Hugging Face safetensors/``.pth``,
            read by ``keras_vit.weights.load_weights``) or a checkpoint name (fetched and
            cached by ``keras_vit.weights.hub``) loaded into this variant.
        pretrained: fetch the variant's default checkpoint (timm's default tag), or the
            named checkpoint's weights (a timm name without it builds random weights).
        **overrides: any ``VisionTransformer`` argument, e.g. ``num_classes=10`` (a new
            head when the checkpoint's differs), ``class_names=[...]`` or ``mean``/``std``.

    Returns:
        A ``keras_vit.VisionTransformer``.

    Raises:
        TypeError: a keyword argument the model does not take (``drop_path=`` for ``drop_path_rate=``).
        ValueError: an unknown name (with the closest known names).

    Example:
        >>> model = create_model("Ti/16", num_classes=10)
        >>> model.count_params()
        5526346
        >>> create_model("vit_base_patch16_224.augreg2_in21k_ft_in1k", pretrained=True)  # doctest: +SKIP
    """
    check_arguments(overrides, f"create_model({variant!r})")
    what = resolve(variant)
    if what.kind == "file":
        raise ValueError(f"{variant!r} is a file, not a variant or checkpoint name: load a .keras file with "
                         f"keras_vit.load_model, or pass a checkpoint file as weights= with a variant name.")
    if what.kind == "checkpoint":
        if weights is not None:
            raise ValueError(f"{variant!r} names a checkpoint already; pass weights= only with a variant name.")
        if pretrained or variant.startswith((table.HUB_PREFIX, table.NPZ_PREFIX)):  # these always download
            return load_pretrained(variant, **overrides)[0]
        overrides = {"image_size": what.entry.image_size, "num_classes": what.entry.num_classes, **overrides}
        what = Resolved("variant", what.entry.variant)
    canonical = what.name
    if pretrained:
        if weights is not None:
            raise ValueError("Pass pretrained=True or weights=, not both.")
        entry = table.find_pretrained(canonical)
        if entry is None:
            raise ValueError(f"No known checkpoint for {canonical!r}; `keras-vit models --pretrained` lists them.")
        weights = entry.name
    source = None if weights is None else resolve(weights)
    if source is not None and source.kind == "checkpoint":
        return load_pretrained(weights, canonical, **overrides)[0]
    if source is not None and source.kind == "variant":
        raise ValueError(f"weights={weights!r} is a variant name; pass a checkpoint file or checkpoint name.")
    model = VisionTransformer(**{**registry.variant_config(canonical), "name": canonical, **overrides})
    if weights is not None:
        load_weights(model, weights)
    return model


def load_pretrained(name: str, variant=None, *, skip_head: bool = False, revision=None, token=None, **overrides):
    """Fetches, builds and loads a checkpoint by name.

    Args:
        name: a known name (``keras-vit models --pretrained``), ``"hf-hub:<org>/<repo>"`` or ``"npz:<path>"``.
        variant: keep this registered variant's sizes (e.g. ``"B/16@384"``: resampled position embeddings);
            ``None``: the checkpoint's own architecture.
        skip_head: leave a fresh head (also implied by a ``num_classes`` override that differs).
        revision, token: a Hub branch, tag or commit; a token for gated or private repositories.
        **overrides: any ``VisionTransformer`` argument.

    Returns:
        ``(model, LoadReport)``.

    Raises:
        ValueError: an unknown name (with the closest known names); DownloadError; CorruptCheckpointError.

    Example:
        >>> model, report = load_pretrained("vit_tiny_patch16_224.augreg_in21k_ft_in1k")  # doctest: +SKIP
        >>> model.class_names[0], model.preprocessing.mean                                # doctest: +SKIP
        ('tench, Tinca tinca', (0.5, 0.5, 0.5))
    """
    check_arguments(overrides, f"load_pretrained({name!r})")
    what = resolve(name)
    if what.kind != "checkpoint":
        raise table.unknown_name_error(name)
    path, source = _fetch(what, revision, token)
    described, source = checkpoint_config(path, source)
    if variant is not None:
        canonical = registry.resolve_name(variant)
        config = {**registry.variant_config(canonical), "name": canonical,
                  **{k: described[k] for k in _HEAD_KEYS if k in described}}
    else:
        config = {**described, "name": re.sub(r"\W", "_", name.split(":")[-1].split("/")[-1])}
    config.update(overrides)
    new_head = skip_head or config["num_classes"] != described["num_classes"]
    if new_head and "class_names" not in overrides:
        config.pop("class_names", None)
    model = VisionTransformer(**config)
    try:
        report = load_weights(model, path, source, skip_head=new_head)
    except CorruptCheckpointError as error:
        hub.forget(path)
        raise CorruptCheckpointError(f"{error} It was removed from the cache; load again to download it anew.") from None
    return model, report


def _fetch(what: Resolved, revision, token) -> tuple:
    """``(local weights path, source)`` of a resolved checkpoint; ``source``: ``"npz"``, or ``None`` (read the file)."""
    if what.name.startswith(table.NPZ_PREFIX):
        return hub.fetch_npz(what.name[len(table.NPZ_PREFIX):], what.entry.sha256 if what.entry else None), "npz"
    repo = what.entry.location if what.entry else what.name[len(table.HUB_PREFIX):]
    return hub.fetch_hub(repo, revision, token), None


def model_from_name(name: str, **overrides):
    """The model of a checkpoint name, weights loaded and contract set (``load_pretrained(name)[0]``)."""
    return load_pretrained(name, **overrides)[0]


def resize_model(model, image_size, method: str = "bicubic", antialias: bool = True):
    """A new ``VisionTransformer`` at ``image_size`` with ``model``'s weights.

    Position embeddings are resampled to the new patch grid; every other weight
    is copied. ``model`` is not changed.

    Args:
        model: a built ``keras_vit.VisionTransformer``.
        image_size: int or ``(height, width)``, divisible by the patch size.
        method, antialias: as in ``keras_vit.weights.resample_position_embeddings``.

    Returns:
        The new model.

    Example:
        >>> big = resize_model(create_model("vit_test"), 64)
        >>> big.input_shape
        (None, 64, 64, 3)
    """
    new = VisionTransformer.from_config({**model.get_config(), "image_size": image_size})
    height, width = new.input_shape[1:3]
    old_height, old_width = model.input_shape[1:3]
    grid, old_grid = (height // new.patch_size, width // new.patch_size), (
        old_height // model.patch_size, old_width // model.patch_size)
    source = {v.path: v for v in model.weights}
    for variable in new.weights:
        value = np.asarray(source[variable.path].numpy())
        if variable.path.endswith("position_embeddings") and model.position_embedding == "sincos":
            continue  # a fixed table: the new model built its own for the new grid
        if variable.path.endswith("position_embeddings") and value.shape != tuple(variable.shape):
            value = resample_position_embeddings(value, grid, 1, method, antialias, old_grid=old_grid)
        variable.assign(value)
    return new


__all__ = ["Resolved", "create_model", "load_pretrained", "model_from_name", "resize_model", "resolve"]
