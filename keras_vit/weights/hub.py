"""Checkpoints by name: fetched from the Hugging Face Hub or Google's bucket, cached, verified, built, loaded.

``load_pretrained(name)`` turns a name (keras_vit.weights.pretrained) into a model:

1. **fetch**: Hub repositories with ``huggingface_hub.hf_hub_download`` (its cache, ``revision=``,
   ``token=``; ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` are read at each call);
   ``.npz`` files with ``keras.utils.get_file`` from ``$KERAS_VIT_NPZ_URL`` (default Google's public bucket)
   into ``$KERAS_HOME/keras_vit``, checked against the table's sha256.
2. **verify**: a Hub blob whose name (the server's ETag) is a sha256 (weights, stored with Git LFS) or a git
   blob id (small files) is hashed and compared; a mismatch, or a file the reader finds truncated, is removed
   from the cache before the error is raised, so no later (offline) load can pick it up.
3. **build**: the architecture comes from the checkpoint itself: timm's ``config.json``
   (``architecture``, ``model_args``, ``pretrained_cfg.input_size``, ``num_classes``, ``global_pool``), a
   transformers ``config.json`` (sizes, ``layer_norm_eps``, ``id2label`` -> class names) or the ``.npz``
   array shapes (a pre-logits layer there means vit_jax's tanh head).
4. **load**: ``load_weights`` (exact; it also sets the checkpoint's mean/std/interpolation on the model).
   A 1000-class ImageNet head without names of its own gets the ImageNet-1k class names shipped with the
   package.

Example:
    >>> from keras_vit.weights.hub import model_from_name
    >>> model = model_from_name("vit_tiny_patch16_224.augreg_in21k_ft_in1k")  # doctest: +SKIP
    >>> model.class_names[0], model.preprocessing.mean                         # doctest: +SKIP
    ('tench, Tinca tinca', (0.5, 0.5, 0.5))
"""

import hashlib
import math
import os
import re
import urllib.parse
import warnings

from keras_vit.weights import io
from keras_vit.weights.pretrained import (
    HUB_PREFIX, NPZ_PREFIX, find_pretrained, imagenet1k_classes, unknown_name_error,
)
from keras_vit.weights.safetensors_io import CorruptCheckpointError

NPZ_URL_ENV = "KERAS_VIT_NPZ_URL"
NPZ_URL = "https://storage.googleapis.com/vit_models/"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TIMM_ARGS = {"img_size": "image_size", "patch_size": "patch_size", "in_chans": "channels",
              "num_classes": "num_classes", "embed_dim": "hidden_dim", "depth": "num_layers",
              "num_heads": "num_heads"}
_POOLING = {"token": "token", "avg": "gap"}
# transformers' ViTConfig defaults, for keys a config.json leaves out.
_HF_DEFAULTS = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                "image_size": 224, "patch_size": 16, "num_channels": 3, "layer_norm_eps": 1e-12}
# What a checkpoint decides even when the caller names the variant (its dims stay the variant's).
_HEAD_KEYS = ("num_classes", "pooling", "representation_size", "representation_activation",
              "layer_norm_epsilon", "class_names")


class DownloadError(OSError):
    """A checkpoint could not be fetched; the message names the URL and how to work offline."""


def _true(value) -> bool:
    return str(value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def is_checkpoint_name(value) -> bool:
    """Whether ``value`` names a checkpoint to fetch (and is not a path that exists)."""
    if not isinstance(value, str) or os.path.exists(value):
        return False
    if value.startswith((HUB_PREFIX, NPZ_PREFIX)) or find_pretrained(value) is not None and "." in value:
        return True
    from keras_vit.registry import list_models

    return "." in value and value.split(".", 1)[0] in list_models()  # "<variant>.<unknown tag>": suggest names


# ----------------------------------------------------------------------------------------------- fetching
def _offline_hint(url, cache):
    return (f"To work offline: load it once with a connection (it is then cached in {cache}) and set "
            f"HF_HUB_OFFLINE=1; or point HF_ENDPOINT (Hub) / {NPZ_URL_ENV} (.npz) at a mirror; or download the "
            f"file elsewhere and pass its path: create_model(variant, weights='path/to/model.safetensors'). "
            f"URL: {url}")


def _hub_cache():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def _purge(path):
    """Removes a cached download: the snapshot entry and the blob it points to."""
    for target in {os.path.realpath(path), path}:
        if os.path.lexists(target):
            os.remove(target)


def _file_digest(path, name, header=b""):
    digest = hashlib.new(name)
    digest.update(header)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_hub_file(path: str, url: str) -> None:
    """Hashes a Hub download against its ETag (the blob's name in the cache); removes it on a mismatch.

    Raises:
        CorruptCheckpointError: the content is not what the server's ETag says.
    """
    etag = os.path.basename(os.path.realpath(path))
    if re.fullmatch(r"[0-9a-f]{64}", etag):  # Git LFS: the sha256 of the content
        found = _file_digest(path, "sha256")
    elif re.fullmatch(r"[0-9a-f]{40}", etag):  # a git blob id: sha1 of "blob <size>\0" + content
        found = _file_digest(path, "sha1", b"blob %d\0" % os.path.getsize(path))
    else:
        return
    if found != etag:
        _purge(path)
        raise CorruptCheckpointError(
            f"{url}: the download's hash is {found}, but the server's ETag says {etag}; the file is truncated "
            f"or altered. It was removed from the cache; load again to download it anew.")


def _unreachable(url, token):
    """A DownloadError when one HEAD without retries cannot reach ``url`` (so a missing network fails in a
    second instead of after ~25 s of backoff), else ``None``."""
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.errors import HfHubHTTPError

    try:
        get_hf_file_metadata(url, token=token, timeout=10)
    except HfHubHTTPError:
        return None  # the server answered; hf_hub_download reports 401/404 in its own words
    except Exception as error:  # noqa: BLE001  (connection refused, DNS, TLS, proxy, timeout)
        return DownloadError(f"Cannot reach the Hugging Face Hub ({type(error).__name__}: {error}). "
                             f"{_offline_hint(url, _hub_cache())}")
    return None


def _hub_file(repo_id, filename, revision, token, required=True):
    """The local path of one repository file (downloaded or cached), verified. ``None`` when ``required`` is
    false and the Hub says (or the cache remembers) that the repository has no such file."""
    from huggingface_hub import hf_hub_download, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    endpoint, cache, offline = os.environ.get("HF_ENDPOINT") or None, _hub_cache(), _true(os.environ.get("HF_HUB_OFFLINE"))
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    cached = try_to_load_from_cache(repo_id, filename, cache, revision)
    if cached is not None and not isinstance(cached, str) and not required:
        return None  # the cache remembers that the repository has no such file
    if not offline and cached is None:
        error = _unreachable(url, token)
        if error is not None:
            raise error
    try:
        path = hf_hub_download(repo_id, filename, revision=revision, token=token, endpoint=endpoint,
                               cache_dir=cache, local_files_only=offline)
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set and it is not in the cache" if offline else "the Hub cannot be reached"
        raise DownloadError(f"Cannot load {filename} of {repo_id}: {why}. {_offline_hint(url, cache)}") from None
    except (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise DownloadError(f"{url}: {type(error).__name__}. A private or gated repository needs a token: "
                            f"log in with `hf auth login`, set HF_TOKEN, or pass token=.") from None
    except EntryNotFoundError:
        if required:
            raise
        return None
    verify_hub_file(path, url)
    return path


def fetch_hub(repo_id: str, revision=None, token=None) -> str:
    """Downloads (or finds cached) a repository's weights and config files; returns the weights path.

    The config files land beside the weights (one snapshot folder), where ``load_weights`` reads them.
    """
    _hub_file(repo_id, "config.json", revision, token)
    _hub_file(repo_id, "preprocessor_config.json", revision, token, required=False)
    for filename in WEIGHT_FILES:
        path = _hub_file(repo_id, filename, revision, token, required=False)
        if path:
            return path
    raise DownloadError(f"{repo_id} holds none of {WEIGHT_FILES}; it is not a timm or transformers ViT repository.")


def fetch_npz(path: str, sha256=None) -> str:
    """Downloads (or finds cached) ``<$KERAS_VIT_NPZ_URL>/<path>.npz``; returns the local file.

    ``sha256`` pins the content; without it the first download's hash is recorded beside the file
    (``.sha256``) and later loads must match it.

    Raises:
        CorruptCheckpointError: the hash differs (nothing is left in the cache).
        DownloadError: no connection and no cached copy.
    """
    import keras

    url = os.environ.get(NPZ_URL_ENV, NPZ_URL).rstrip("/") + "/" + urllib.parse.quote(path) + ".npz"
    cache_dir = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    fname = path.replace("/", "--") + ".npz"
    local = os.path.join(cache_dir, "keras_vit", fname)
    os.makedirs(os.path.dirname(local), exist_ok=True)  # get_file falls back to /tmp/.keras for a missing folder
    record = local + ".sha256"
    expected = sha256 or (open(record, encoding="utf-8").read().strip() if os.path.isfile(record) else None)
    try:
        found = keras.utils.get_file(fname, url, file_hash=expected, hash_algorithm="sha256",
                                     cache_dir=cache_dir, cache_subdir="keras_vit")
    except ValueError as error:  # get_file's hash check
        if os.path.exists(local):
            os.remove(local)
        raise CorruptCheckpointError(f"{url}: {error} The download was removed from the cache.") from None
    except Exception as error:  # noqa: BLE001  (get_file raises a bare Exception for URL failures)
        raise DownloadError(f"Cannot download {url} ({error}). {_offline_hint(url, os.path.dirname(local))}") from None
    if expected is None:
        digest = _file_digest(found, "sha256")
        with open(record, "w", encoding="utf-8") as file:
            file.write(digest)
        warnings.warn(f"{url}: keras_vit pins no sha256 for this file yet; recorded {digest} on first download "
                      f"and every later load is checked against it.", stacklevel=3)
    return found


def fetch(name: str, revision=None, token=None) -> tuple:
    """``(local weights path, source)`` for a checkpoint name; ``source`` is ``"npz"`` or ``None`` (from the file)."""
    entry = find_pretrained(name)
    if name.startswith(NPZ_PREFIX):
        return fetch_npz(name[len(NPZ_PREFIX):], entry.sha256 if entry else None), "npz"
    if entry is None and not name.startswith(HUB_PREFIX):
        raise unknown_name_error(name)
    return fetch_hub(entry.location if entry else name[len(HUB_PREFIX):], revision, token), None


# ----------------------------------------------------------------------------------------------- building
def _timm_config(cfg):
    from keras_vit.registry import list_models, variant_config

    arch, args = cfg.get("architecture"), dict(cfg.get("model_args") or {})
    if arch not in list_models() and not {"embed_dim", "depth", "num_heads", "patch_size"} <= set(args):
        raise ValueError(f"timm architecture {arch!r} is not a keras_vit variant and config.json has no model_args; "
                         f"build the model yourself and call load_weights.")
    config = variant_config(arch) if arch in list_models() else {}
    pre = cfg.get("pretrained_cfg") or {}
    if pre.get("input_size"):
        config["channels"], config["image_size"] = pre["input_size"][0], tuple(pre["input_size"][1:])
    config.update({ours: args[theirs] for theirs, ours in _TIMM_ARGS.items() if theirs in args})
    if "mlp_ratio" in args:
        config["mlp_dim"] = int(round(config["hidden_dim"] * args["mlp_ratio"]))
    config["num_classes"] = cfg.get("num_classes", config.get("num_classes", 1000))
    pool = args.get("global_pool", cfg.get("global_pool"))
    config["pooling"] = _POOLING.get(pool, config.get("pooling", "token"))
    labels = cfg.get("label_names")
    if labels and len(labels) == config["num_classes"]:
        config["class_names"] = list(labels)
    return config


def _hf_config(cfg):
    c = {**_HF_DEFAULTS, **cfg}
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


def _npz_config(path):
    import numpy as np

    from keras_vit.weights.npz import npz_prefix

    io.detect_format(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            p = npz_prefix(arrays.files)
            block = f"{p}Transformer/encoderblock_0/"
            patch, _, channels, dim = arrays[p + "embedding/kernel"].shape
            tokens = arrays[p + "Transformer/posembed_input/pos_embedding"].shape[1]
            heads = arrays[block + "MultiHeadDotProductAttention_1/query/kernel"].shape[1]
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


def checkpoint_config(path: str, source=None) -> tuple:
    """``(VisionTransformer arguments, source)`` read from a checkpoint and the config files beside it."""
    if source == "npz" or (source is None and io.detect_format(path) == "npz"):
        config, source = _npz_config(path), "npz"
    else:
        cfg = io.read_sidecar(path, "config.json") or {}
        if "architecture" in cfg or source == "timm":
            config, source = _timm_config(cfg), "timm"
        elif "model_type" in cfg or "architectures" in cfg or source == "huggingface":
            config, source = _hf_config(cfg), "huggingface"
        else:
            raise ValueError(f"{path!r} has no timm or transformers config.json beside it; "
                             f"build the model and call keras_vit.weights.load_weights.")
    if config.get("num_classes") == 1000 and "class_names" not in config:
        config["class_names"] = imagenet1k_classes()
    return config, source


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
    """
    from keras_vit.model import VisionTransformer
    from keras_vit.registry import resolve_name, variant_config
    from keras_vit.weights.loader import load_weights

    path, source = fetch(name, revision, token)
    described, source = checkpoint_config(path, source)
    if variant is not None:
        canonical = resolve_name(variant)
        config = {**variant_config(canonical), "name": canonical,
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
        _purge(path)
        if os.path.exists(path + ".sha256"):  # an .npz's first-download record goes with it
            os.remove(path + ".sha256")
        raise CorruptCheckpointError(f"{error} It was removed from the cache; load again to download it anew.") from None
    return model, report


def model_from_name(name: str, **overrides):
    """The model of a checkpoint name, weights loaded and contract set (``load_pretrained(name)[0]``)."""
    return load_pretrained(name, **overrides)[0]


__all__ = ["DownloadError", "checkpoint_config", "fetch", "fetch_hub", "fetch_npz", "is_checkpoint_name",
           "load_pretrained", "model_from_name", "verify_hub_file"]
