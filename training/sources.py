"""Where training images come from: an image-folder tree, a TFDS data set, or the bundled digits.

A *source* is a split of a data set described without TensorFlow: either a
list of files with labels (``FileSource``), uint8 arrays in memory
(``ArraySource``) or a TFDS split read as a stream (``TfdsSource``).
:mod:`keras_vit.training.data` turns a source into ``tf.data`` pipelines.

Data specs (the ``--data`` argument of ``keras-vit train``):

* ``digits``: scikit-learn's bundled 8x8 digits (``keras_vit.datasets.load_digits``).
* ``cifar10``: the shared CIFAR-10 JPEG tree (``keras_vit.datasets.cifar10_dir``).
* ``folder:PATH`` or a bare existing directory: ``PATH/<split>/<class>/*.jpg``;
  a tree without split folders is read as the class root of every split.
* ``tfds:NAME`` (any TFDS name, read from ``data_dir``; TFDS cannot download
  here) and ``tfds-folder:PATH`` (the same tree read with TFDS' ``ImageFolder``
  builder).

Image folders are listed by :func:`keras_vit.images.scan_image_folder`, the reader
calibration uses too (same extensions, same class order). Listing validates each file cheaply
(known image signature; JPEG ends with its end-of-image marker, PNG with ``IEND``) so truncated,
corrupt and non-image files are skipped and counted with one warning instead of crashing an epoch.
"""

import dataclasses
import logging
import os

import numpy as np

from keras_vit.images import scan_image_folder

log = logging.getLogger("keras_vit.training")

SPLIT_ALIASES = {"train": ("train", "training"), "test": ("test", "val", "validation", "valid")}


@dataclasses.dataclass
class FileSource:
    """Image files and integer labels of one split (``class_names[label]``)."""

    paths: list
    labels: np.ndarray
    class_names: tuple
    skipped: list = dataclasses.field(default_factory=list)

    @property
    def num_examples(self) -> int:
        return len(self.paths)


@dataclasses.dataclass
class ArraySource:
    """uint8 images ``(N, H, W, C)`` and labels held in memory."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple

    @property
    def num_examples(self) -> int:
        return len(self.images)


@dataclasses.dataclass
class TfdsSource:
    """A TFDS split read as a stream of ``(image, label)``."""

    builder: object
    split: str
    num_examples: int
    class_names: tuple
    image_key: str = "image"
    label_key: str = "label"

    def as_dataset(self):
        """``tf.data`` of ``(uint8 image, int64 label)`` in the split's stored order."""
        ds = self.builder.as_dataset(split=self.split, shuffle_files=False)
        return ds.take(self.num_examples).map(lambda e: (e[self.image_key], e[self.label_key]))


def list_image_folder(root: str, class_names=None, validate: bool = True) -> FileSource:
    """Lists ``root/<class>/<image>`` files, skipping (and counting) unreadable ones.

    Args:
        root: a folder with one sub-folder per class.
        class_names: the classes in label order; default: sorted sub-folders.
        validate: check each file's signature and end marker (fast, no decode).

    Returns:
        A ``FileSource`` with files in a stable (sorted) order.

    Raises:
        FileNotFoundError / ValueError: missing folder, no classes, or no images at all.

    Example:
        >>> source = list_image_folder(keras_vit.datasets.cifar10_dir("test"))  # doctest: +SKIP
        >>> source.num_examples, source.class_names[:2]  # doctest: +SKIP
        (10000, ('airplane', 'automobile'))
    """
    listing = scan_image_folder(root, class_names, validate)
    if not listing.class_names:
        raise ValueError(
            f"No class sub-folders in {root!r}. Expected {root}/<class_name>/<image>.jpg "
            f"(or {root}/train/<class_name>/... with split folders)."
        )
    in_classes = [i for i, label in enumerate(listing.labels) if label >= 0]  # not the files beside them
    paths, labels = [listing.paths[i] for i in in_classes], [listing.labels[i] for i in in_classes]
    skipped = listing.skipped
    if not paths:
        raise ValueError(f"No readable images under {root!r} (skipped {len(skipped)} files).")
    present = set(labels)
    empty = [name for label, name in enumerate(listing.class_names) if label not in present]
    if empty:
        log.warning("%d class folder(s) of %s hold no readable image: %s", len(empty), root, empty[:10])
    if skipped:
        log.warning(
            "Skipped %d unreadable or non-image file(s) under %s, e.g. %s", len(skipped), root, skipped[:3]
        )
    return FileSource(paths, np.asarray(labels, np.int64), listing.class_names, skipped)


def _split_folder(root: str, split: str):
    for alias in SPLIT_ALIASES.get(split, (split,)):
        if os.path.isdir(os.path.join(root, alias)):
            return os.path.join(root, alias)
    return None


def _is_class_root(root: str) -> bool:
    subdirs = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]
    return bool(subdirs) and not any(d in sum(SPLIT_ALIASES.values(), ()) for d in subdirs)


def load_source(data: str, split: str = "train", data_dir=None, class_names=None, validate: bool = True):
    """Resolves a data spec (see the module docstring) to the source of one split.

    Args:
        data: ``digits``, ``cifar10``, ``folder:PATH``, a directory, ``tfds:NAME``
            or ``tfds-folder:PATH``.
        split: ``"train"`` or ``"test"`` (``val``/``validation`` folders count as test).
        data_dir: TFDS data directory for ``tfds:`` specs.
        class_names: label order to enforce (the train split's), for folders.

    Returns:
        A ``FileSource``, ``ArraySource`` or ``TfdsSource``.
    """
    if not isinstance(data, str) or not data:
        raise ValueError(f"data must be a non-empty string; received data={data!r}.")
    if data == "digits":
        from keras_vit.datasets import DIGIT_LABELS, load_digits

        (x, y), (xt, yt) = load_digits()
        return ArraySource(*((x, y) if split == "train" else (xt, yt)), DIGIT_LABELS)
    if data == "cifar10":
        from keras_vit.datasets import CIFAR10_LABELS, cifar10_dir

        root = cifar10_dir(split)
        if root is None:
            raise FileNotFoundError(
                "data='cifar10' needs the shared CIFAR-10 archives; set KERAS_VIT_DATA to the folder holding "
                "cifar10/cifar10-{train,test}.tar.gz, or pass data=folder:PATH."
            )
        return list_image_folder(root, class_names or CIFAR10_LABELS, validate)
    if data.startswith("tfds:"):
        return _tfds_source(data[5:], split, data_dir)
    if data.startswith("tfds-folder:"):
        return _tfds_folder_source(data[len("tfds-folder:"):], split)
    path = data[len("folder:"):] if data.startswith("folder:") else data
    if not os.path.isdir(path):
        raise ValueError(
            f"Unknown data {data!r}: not a folder, and not one of 'digits', 'cifar10', 'folder:PATH', "
            f"'tfds:NAME', 'tfds-folder:PATH'."
        )
    root = _split_folder(path, split)
    if root is None:
        if not _is_class_root(path):
            raise FileNotFoundError(
                f"No {split!r} split under {path!r}: expected {path}/{split}/<class>/ "
                f"(found {sorted(os.listdir(path))[:10]})."
            )
        root = path
    return list_image_folder(root, class_names, validate)


def _tfds_source(name: str, split: str, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several types for unknown names
        raise ValueError(
            f"Unknown TFDS data set {name!r} (data_dir={data_dir!r}): {error}. TFDS cannot download here: "
            f"prepare it elsewhere and pass --data-dir, or use data=folder:PATH."
        ) from None
    if not builder.info.splits:
        raise FileNotFoundError(
            f"TFDS data set {name!r} is not prepared in data_dir={builder.data_dir!r}; TFDS cannot download here."
        )
    return _tfds_split(builder, split)


def _tfds_split(builder, split):
    splits = builder.info.splits
    chosen = next((a for a in SPLIT_ALIASES.get(split, (split,)) if a in splits), None)
    if chosen is None:
        raise ValueError(f"TFDS data set {builder.name!r} has no {split!r} split; it has {sorted(splits)}.")
    import tensorflow_datasets as tfds

    features = builder.info.features
    keys = builder.info.supervised_keys
    if keys and len(keys) == 2 and all(isinstance(k, str) for k in keys):
        image_key, label_key = keys
    else:
        image_key = next((k for k, f in features.items() if isinstance(f, tfds.features.Image)), None)
        label_key = next((k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)), None)
    if image_key is None or not isinstance(features[label_key] if label_key else None, tfds.features.ClassLabel):
        raise ValueError(f"TFDS data set {builder.name!r} has no image + class-label features: {features}.")
    return TfdsSource(builder, chosen, int(splits[chosen].num_examples), tuple(features[label_key].names),
                      image_key, label_key)


def _tfds_folder_source(root: str, split: str):
    import tensorflow_datasets as tfds

    if not os.path.isdir(root):
        raise FileNotFoundError(f"Image folder not found: data='tfds-folder:{root}'.")
    return _tfds_split(tfds.ImageFolder(root), split)


def subset(source, count, seed: int = 0):
    """A seeded random subset of ``count`` examples (kept in original order); TFDS sources are capped."""
    if count is None or count >= source.num_examples:
        return source
    if isinstance(source, TfdsSource):
        return dataclasses.replace(source, num_examples=int(count))
    keep = np.sort(np.random.default_rng(seed).permutation(source.num_examples)[:count])
    if isinstance(source, ArraySource):
        return ArraySource(source.images[keep], source.labels[keep], source.class_names)
    return FileSource([source.paths[i] for i in keep], source.labels[keep], source.class_names, source.skipped)
