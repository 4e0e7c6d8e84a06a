"""Loading saved models: ``load_model`` for ``.keras`` files, and ``open_model`` for a command's ``MODEL``.

Importing this module imports the model (and with it every layer), which registers them for
``keras.models.load_model``; the ``register`` decorator itself is ``keras_vit.registration``.
"""

import json
import os
import warnings
import zipfile
import zlib

import keras

import keras_vit.model  # noqa: F401  (registers the model and every layer for keras.models.load_model)
from keras_vit.factory import create_model, model_from_name, resolve
from keras_vit.preprocessing import Preprocessing
# Runs saved before the contract lived on the model wrote it beside the model under this name.
LEGACY_SIDECAR = "preprocessing.json"


def load_model(path, compile: bool = False):
    """Loads a ``.keras`` file with its contract; a legacy ``preprocessing.json`` beside it still applies.

    Args:
        path: a ``.keras`` file written by ``model.save``, ``keras-vit train`` or ``keras-vit finetune``.
        compile: restore the optimizer and loss too (``keras.models.load_model``'s flag).

    Returns:
        the model; ``model.preprocessing`` and ``model.class_names`` hold its contract.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when it is damaged, truncated or not a ``.keras`` archive (names the file).

    Example:
        >>> import keras_vit
        >>> keras_vit.create_model("vit_test", class_names=list("abcdefghij")).save("/tmp/vit_test.keras")
        >>> keras_vit.load_model("/tmp/vit_test.keras").class_names[:3]
        ['a', 'b', 'c']
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path!r}. Pass a .keras file saved by model.save or keras-vit.")
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found"
        raise ValueError(f"{path!r} is not a .keras file: not a zip archive (empty, truncated or another format). "
                         f"Pass a .keras file saved by model.save or keras-vit.")
    try:
        model = keras.models.load_model(path, compile=compile)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OSError, EOFError, zipfile.BadZipFile,
            zlib.error) as error:  # what Keras, zipfile and h5py raise on a damaged file
        reason = " ".join(str(error).split())[:300]
        raise ValueError(f"Cannot load {path!r} as a Keras model ({type(error).__name__}: {reason}). The file is "
                         f"damaged, truncated or not a .keras archive; save or download it again.") from error
    sidecar = os.path.join(os.path.dirname(os.path.abspath(path)), LEGACY_SIDECAR)
    if os.path.isfile(sidecar) and hasattr(model, "set_contract") and "mean" not in _saved_config(path):
        with open(sidecar, encoding="utf-8") as handle:
            model.set_contract(Preprocessing.from_dict(json.load(handle)))
        warnings.warn(f"{path}: applied the input contract of the legacy {sidecar}; saving the model again "
                      f"stores it inside the .keras file.", stacklevel=2)
    return model


def _saved_config(path) -> dict:
    """The model's config as stored in a ``.keras`` archive (a zip with ``config.json``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json")).get("config", {})
    except (zipfile.BadZipFile, KeyError, ValueError):
        return {}


def open_model(spec: str, what: str = "the output"):
    """The model a command-line ``MODEL`` names: a ``.keras`` file, a pretrained checkpoint name, or a variant.

    A variant name (``vit_test``, ``Ti/16``) builds random weights, and a note on stdout says so and that
    ``what`` shows an untrained model.

    Raises:
        FileNotFoundError: for a ``.keras`` path that does not exist.
        ValueError: for a name that is neither a checkpoint nor a variant (with the closest names).
    """
    what = resolve(spec)
    if what.kind == "file":
        return load_model(what.name)
    if what.kind == "checkpoint":
        return model_from_name(what.name)
    model = create_model(spec)
    print(f"note: {spec!r} is a variant name, so the model has random weights and {what} is that of an untrained "
          f"model. Pass a .keras file (e.g. RUN_DIR/model.keras from keras-vit train) or a checkpoint name.")
    return model
