"""Fetching checkpoint files: from the Hugging Face Hub or Google's bucket, cached and verified. Nothing more.

This module is told where a file lives (``keras_vit.factory.resolve`` decides what a name is); it
never builds a model:

1. **fetch**: Hub repositories with ``huggingface_hub.hf_hub_download`` (its cache, ``revision=``,
   ``token=``; ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` are read at each call);
   ``.npz`` files with ``keras.utils.get_file`` from ``$KERAS_VIT_NPZ_URL`` (default Google's public bucket)
   into ``$KERAS_HOME/keras_vit``, checked against the table's sha256.
2. **verify**: a Hub blob whose name (the server's ETag) is a sha256 (weights, stored with Git LFS) or a git
   blob id (small files) is hashed and compared; a mismatch, or a file the reader later finds truncated
   (:func:`forget`), is removed from the cache before the error is raised, so no later (offline) load can
   pick it up.

Example:
    >>> from keras_vit.weights.hub import fetch_hub
    >>> path = fetch_hub("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k")  # doctest: +SKIP
"""

import os
import re
import urllib.parse
import warnings

try:  # not a keras-vit requirement: only loads from the Hub need it
    import huggingface_hub
    from huggingface_hub import errors as hub_errors
except ImportError:
    huggingface_hub = hub_errors = None

from keras_vit.digest import file_digest
from keras_vit.weights.safetensors_io import CorruptCheckpointError

NPZ_URL_ENV = "KERAS_VIT_NPZ_URL"
NPZ_URL = "https://storage.googleapis.com/vit_models/"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class DownloadError(OSError):
    """A checkpoint could not be fetched; the message names the URL and how to work offline."""


def _true(value) -> bool:
    return str(value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


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


def forget(path: str) -> None:
    """Removes a fetched file found damaged after download, and an ``.npz``'s first-download hash record."""
    _purge(path)
    if os.path.exists(path + ".sha256"):
        os.remove(path + ".sha256")


def verify_hub_file(path: str, url: str) -> None:
    """Hashes a Hub download against its ETag (the blob's name in the cache); removes it on a mismatch.

    Raises:
        CorruptCheckpointError: the content is not what the server's ETag says.
    """
    etag = os.path.basename(os.path.realpath(path))
    if re.fullmatch(r"[0-9a-f]{64}", etag):  # Git LFS: the sha256 of the content
        found = file_digest(path, "sha256")
    elif re.fullmatch(r"[0-9a-f]{40}", etag):  # a git blob id: sha1 of "blob <size>\0" + content
        found = file_digest(path, "sha1", b"blob %d\0" % os.path.getsize(path))
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
    try:
        huggingface_hub.get_hf_file_metadata(url, token=token, timeout=10)
    except hub_errors.HfHubHTTPError:
        return None  # the server answered; hf_hub_download reports 401/404 in its own words
    except Exception as error:  # noqa: BLE001  (connection refused, DNS, TLS, proxy, timeout)
        return DownloadError(f"Cannot reach the Hugging Face Hub ({type(error).__name__}: {error}). "
                             f"{_offline_hint(url, _hub_cache())}")
    return None


def _hub_file(repo_id, filename, revision, token, required=True):
    """The local path of one repository file (downloaded or cached), verified. ``None`` when ``required`` is
    false and the Hub says (or the cache remembers) that the repository has no such file."""
    if huggingface_hub is None:
        raise ImportError(f"Loading {repo_id} from the Hugging Face Hub needs huggingface_hub: "
                          f"pip install huggingface_hub. Or download the files and pass the weights' path.")
    endpoint, cache, offline = os.environ.get("HF_ENDPOINT") or None, _hub_cache(), _true(os.environ.get("HF_HUB_OFFLINE"))
    url = huggingface_hub.hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache, revision)
    if cached is not None and not isinstance(cached, str) and not required:
        return None  # the cache remembers that the repository has no such file
    if not offline and cached is None:
        error = _unreachable(url, token)
        if error is not None:
            raise error
    try:
        path = huggingface_hub.hf_hub_download(repo_id, filename, revision=revision, token=token, endpoint=endpoint,
                               cache_dir=cache, local_files_only=offline)
    except hub_errors.LocalEntryNotFoundError:
        if offline and not required:
            return None  # an optional file never fetched (timm and `hf download` skip it) is absent offline
        why = "HF_HUB_OFFLINE is set and it is not in the cache" if offline else "the Hub cannot be reached"
        raise DownloadError(f"Cannot load {filename} of {repo_id}: {why}. {_offline_hint(url, cache)}") from None
    except (hub_errors.GatedRepoError, hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError) as error:
        raise DownloadError(f"{url}: {type(error).__name__}. A private or gated repository needs a token: "
                            f"log in with `hf auth login`, set HF_TOKEN, or pass token=.") from None
    except hub_errors.EntryNotFoundError:
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
    if _true(os.environ.get("HF_HUB_OFFLINE")):  # offline, an uncached weights file reads as absent: say why
        url = huggingface_hub.hf_hub_url(repo_id, WEIGHT_FILES[0], revision=revision,
                                         endpoint=os.environ.get("HF_ENDPOINT") or None)
        raise DownloadError(f"Cannot load the weights of {repo_id} ({' or '.join(WEIGHT_FILES)}): HF_HUB_OFFLINE "
                            f"is set and none is in the cache. {_offline_hint(url, _hub_cache())}")
    raise DownloadError(f"{repo_id} holds none of {WEIGHT_FILES}; it is not a timm or transformers ViT repository.")


def fetch_npz(path: str, sha256=None) -> str:
    """Downloads (or finds cached) ``<$KERAS_VIT_NPZ_URL>/<path>.npz``; returns the local file.

    ``sha256`` pins the content; without it the first download's hash is recorded beside the file
    (``.sha256``) and later loads must match it.

    Raises:
        CorruptCheckpointError: the hash differs (nothing is left in the cache).
        DownloadError: no connection and no cached copy.
    """
    import keras  # only to download: keras_vit.weights otherwise reads files with NumPy alone, no TensorFlow

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
        digest = file_digest(found, "sha256")
        with open(record, "w", encoding="utf-8") as file:
            file.write(digest)
        warnings.warn(f"{url}: keras_vit pins no sha256 for this file yet; recorded {digest} on first download "
                      f"and every later load is checked against it.", stacklevel=3)
    return found


__all__ = ["DownloadError", "fetch_hub", "fetch_npz", "forget", "verify_hub_file"]
