"""``load_weights``: one entry point that reads a checkpoint, converts it and assigns it atomically.

The converter is chosen by ``source`` when given; otherwise by the file: an
``.npz`` is an original ViT checkpoint, and a ``.safetensors`` or ``.pth`` file
is timm when it holds ``patch_embed.proj.weight`` and Hugging Face when it holds
``vit.embeddings.patch_embeddings.projection.weight`` (``ViTForImageClassification``)
or ``embeddings.patch_embeddings.projection.weight`` (``ViTModel``). Anything
else is refused with a request for ``source=``; no other names are guessed.
"""

from keras_vit.pretrained import imagenet1k_classes
from keras_vit.preprocessing import Preprocessing
from keras_vit.weights import huggingface, io, layout, npz, timm
from keras_vit.weights.assign import LoadReport, WeightMismatchError, assign_weights
from keras_vit.weights.resample import resample_position_embeddings

# One module per checkpoint source: its converter, config translation, contract and resampling rule.
MODULES = {"npz": npz, "timm": timm, "huggingface": huggingface}
SOURCES = tuple(MODULES)


def detect_source(state: dict, file_format: str) -> str:
    """``"npz"``, ``"timm"`` or ``"huggingface"`` from the file format and the documented anchor keys."""
    if file_format == "npz":
        return "npz"
    found = ["timm"] if timm.ANCHOR in state else []
    found += ["huggingface"] if any(p + huggingface.ANCHOR in state for p in huggingface.PREFIXES) else []
    if len(found) == 1:
        return found[0]
    anchors = [timm.ANCHOR] + [p + huggingface.ANCHOR for p in huggingface.PREFIXES]
    raise ValueError(
        f"Cannot tell which ViT layout this {file_format} file uses: it holds "
        f"{'both' if found else 'none'} of the anchor keys {anchors} (first keys: {sorted(state)[:5]}). "
        f"Pass source= one of {SOURCES}."
    )


def checkpoint_preprocessing(path: str, source: str, image_size=224, channels: int = 3) -> Preprocessing:
    """The input contract of a checkpoint: its config file's mean/std when one lies beside it
    (timm ``config.json`` ``pretrained_cfg``; Hugging Face ``preprocessor_config.json``), else the
    source library's ViT default (each source module's ``DEFAULT_CONTRACT``)."""
    mean, std, interpolation = MODULES[source].contract(path)
    return Preprocessing(image_size=image_size, channels=channels, mean=tuple(mean), std=tuple(std),
                         interpolation=interpolation)


def checkpoint_config(path: str, source=None) -> tuple:
    """``(VisionTransformer arguments, source)`` read from a checkpoint and the config files beside it.

    A 1000-class head without names of its own gets the ImageNet-1k class names shipped with the package.
    """
    if source == "npz" or (source is None and io.detect_format(path) == "npz"):
        config, source = npz.model_config(path), "npz"
    else:
        cfg = io.read_sidecar(path, "config.json") or {}
        if "architecture" in cfg or source == "timm":
            config, source = timm.model_config(cfg), "timm"
        elif "model_type" in cfg or "architectures" in cfg or source == "huggingface":
            config, source = huggingface.model_config(cfg), "huggingface"
        else:
            raise ValueError(f"{path!r} has no timm or transformers config.json beside it; "
                             f"build the model and call keras_vit.weights.load_weights.")
    if config.get("num_classes") == 1000 and "class_names" not in config:
        config["class_names"] = imagenet1k_classes()
    return config, source


def _config_mismatches(path, source, model, facts):
    """Architecture facts the shapes cannot show (heads, activation, pooling, epsilon)."""
    found = []
    if "num_heads" in facts and facts["num_heads"] != model.num_heads:
        found.append(("num_heads", facts["num_heads"], model.num_heads))
    return found + MODULES[source].mismatches(path, model)


def _check_pre_logits(model, weights, source):
    if "head/pre_logits/kernel" not in weights:
        return
    head = model.get_layer("head")
    activation = getattr(head, "representation_activation", "gelu")
    if activation != "tanh":
        option = (" or build the model with representation_activation='tanh'"
                  if hasattr(head, "representation_activation") else "")
        raise WeightMismatchError(
            f"This {source} checkpoint has a pre-logits layer, which the original ViT (and timm) follow with "
            f"tanh; this model's ClassificationHead follows it with {activation}, so the logits would differ. "
            f"Load it with skip_head=True (the paper's fine-tuning recipe drops pre-logits and head){option}; "
            f"no weight was changed."
        )


def load_weights(model, path: str, source=None, *, skip_head: bool = False, strict: bool = True,
                 method=None, antialias=None) -> LoadReport:
    """Loads a ViT checkpoint into a keras_vit model, all or nothing.

    Args:
        model: a ``keras_vit.VisionTransformer`` built like the checkpoint's model
            (image size may differ: position embeddings are resampled).
        path: an original ViT/AugReg ``.npz``, or a timm / Hugging Face
            ``.safetensors`` or ``.pth`` (read without executing pickled code).
        source: ``"npz"``, ``"timm"`` or ``"huggingface"``; detected when ``None``.
        skip_head: leave the model's head (and pre-logits) as they are, for
            fine-tuning on new classes.
        strict: missing or unexpected weights are errors (shape mismatches always are).
        method, antialias: position-embedding resampling; the source's own
            choice when ``None`` (its module's ``RESAMPLING``).

    Returns:
        A :class:`LoadReport` (``.summary()`` prints it; ``.preprocessing`` is the input contract,
        which is also set on the model: ``model.preprocessing``).

    Raises:
        FileNotFoundError, CorruptCheckpointError, PickledContentError,
        WeightMismatchError: the model is left unchanged.

    Example:
        >>> import keras_vit
        >>> model = keras_vit.create_model("vit_test")
        >>> report = load_weights(model, "vit_test.safetensors")  # doctest: +SKIP
    """
    if source is not None and source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES} or None; received source={source!r}.")
    file_format = io.detect_format(path)
    state = io.read_checkpoint(path, file_format)
    source = source or detect_source(state, file_format)
    try:
        converted = _convert(source, state)
    except KeyError as error:
        raise ValueError(f"{path!r} is not a {source} ViT checkpoint: {error.args[0]}") from None
    weights, skipped = dict(converted.weights), []
    if skip_head:
        skipped = sorted(k for k in weights if k.startswith(layout.HEAD_PREFIXES))
        for key in skipped:
            del weights[key]
    _check_pre_logits(model, weights, source)
    resampled = None
    target = {v.path: tuple(v.shape) for v in model.weights}.get(layout.POSITION_EMBEDDINGS)
    posemb = weights.get(layout.POSITION_EMBEDDINGS)
    # Only a learned table of the same width is resampled; any other difference is listed with the rest.
    if (posemb is not None and target is not None and posemb.shape != target and posemb.ndim == 3
            and posemb.shape[-1] == target[-1] and model.position_embedding == "learned"):
        height, width = model.input_shape[1:3]
        grid = (height // model.patch_size, width // model.patch_size)
        default_method, default_antialias = MODULES[source].RESAMPLING
        weights[layout.POSITION_EMBEDDINGS] = resample_position_embeddings(
            posemb, grid, 1, method or default_method, default_antialias if antialias is None else antialias)
        resampled = (int(round((posemb.shape[1] - 1) ** 0.5)),) * 2, grid
    allow = [p for p in target_paths(model) if p.startswith(layout.HEAD_PREFIXES)] if skip_head else []
    loaded, missing, unexpected = assign_weights(
        model, weights, allow_missing=allow, strict=strict, what=f"{path!r} ({source})",
        extra_mismatches=_config_mismatches(path, source, model, converted.facts),
        unexpected_keys=converted.unexpected,
    )
    preprocessing = checkpoint_preprocessing(path, source, model.input_shape[1:3], model.input_shape[3])
    if hasattr(model, "set_contract"):  # the checkpoint's input contract travels with its weights
        model.set_contract(preprocessing)
    return LoadReport(path, source, loaded, missing, unexpected,
                      converted.ignored, skipped, resampled, preprocessing)


def _convert(source, state):
    return {"npz": npz.convert_npz, "timm": timm.convert_timm, "huggingface": huggingface.convert_huggingface}[
        source](state)


def target_paths(model):
    """The model's weight paths, in order."""
    return [v.path for v in model.weights]
