"""Reading images with PIL: one file, or a folder (flat or ``class/NNNN.jpg``). No TensorFlow.

The one image reader of the package: training (``keras_vit.training.sources``), export (calibration,
verification) and the device runtime all read pixels here.

Example:
    >>> from keras_vit.images import load_image
    >>> pixels = load_image("cat.jpg", image_size=(32, 32))   # doctest: +SKIP
    >>> pixels.shape, pixels.dtype                             # doctest: +SKIP
    ((32, 32, 3), dtype('uint8'))
"""

import dataclasses
import os
import struct
import sys

import numpy as np
from PIL import Image, UnidentifiedImageError

# The formats both readers decode: Pillow (calibration, verification, the device runtime) and
# tf.io.decode_image (training, keras_vit.training.data). A file type only one of them reads would
# calibrate but not train, or the reverse.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"BM": "bmp", b"GIF87a": "gif", b"GIF89a": "gif"}


@dataclasses.dataclass
class ImageListing:
    """The image files of a folder in a stable order, with labels (``class_names[label]``, -1 outside classes)."""

    paths: list
    labels: list
    class_names: tuple
    skipped: list = dataclasses.field(default_factory=list)


def load_image(path, image_size, channels: int = 3, interpolation: str = "bilinear") -> np.ndarray:
    """Reads one image file as uint8 ``(height, width, channels)``, resized to ``image_size``.

    Args:
        path: an image file PIL can read.
        image_size: ``(height, width)`` or an int for a square.
        channels: 3 (RGB) or 1 (grayscale).
        interpolation: ``"bilinear"``, ``"bicubic"`` or ``"nearest"`` (the contract's field).

    Returns:
        uint8 array ``(height, width, channels)``.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not an image PIL can decode (names the file and PIL's reason), or holds
            32-bit integer pixels. 16-bit grayscale images are scaled to 8 bits, not clipped.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file not found: {path!r}. Pass the path of a JPEG or PNG file.")
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}.get(
        interpolation, Image.BILINEAR
    )
    try:
        with Image.open(path) as image:
            image = _eight_bit(image, path).convert("RGB" if channels == 3 else "L")
            if image.size != (width, height):
                image = image.resize((width, height), resample)
            pixels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"Cannot read image {path!r}: {error}. The file is corrupt or not an image; "
            f"pass a JPEG, PNG or BMP file."
        ) from error
    return pixels.reshape(height, width, channels)


def _eight_bit(image, path):
    """A 16-bit grayscale image (PIL mode ``I;16*``, or ``I`` as older Pillow opens 16-bit PNGs) scaled to 8 bits.

    PIL's ``convert("L"/"RGB")`` clips such pixels at 255, turning a 16-bit photo white; 0..65535 maps to
    0..255 here (``round(v / 257)``, exact for an 8-bit image stored as 16 bits). Other modes pass unchanged.
    """
    if not image.mode.startswith("I"):
        return image
    values = np.asarray(image).astype(np.float64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"{path!r} holds 32-bit integer pixels ({values.min():.0f} .. {values.max():.0f}); "
                         f"keras_vit reads 8- and 16-bit images: save it as an 8- or 16-bit PNG.")
    return Image.fromarray(np.round(values / 257.0).astype(np.uint8), "L")


def image_kind(path) -> str | None:
    """The image format of ``path`` if its bytes look complete, else ``None``.

    Checks the signature at the start and, for JPEG, PNG and WebP, the end marker or the stored
    length, so a truncated download or a text file renamed ``.jpg`` is caught without decoding.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - 12, 0))
            tail = f.read()
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp" if size >= struct.unpack("<I", head[4:8])[0] + 8 else None
    kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind == "jpeg" and b"\xff\xd9" not in tail[-4:]:
        return None
    if kind == "png" and b"IEND" not in tail:
        return None
    return kind


def _visible_files(folder):
    """Non-hidden files under ``folder``, recursively, in sorted order."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield from (os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))


def scan_image_folder(root, class_names=None, validate: bool = False) -> ImageListing:
    """Lists the images of ``root``: a class-folder tree (``root/<class>/**/<image>``) or a flat folder.

    The one folder reader of keras_vit: training (``keras_vit.training.sources``), calibration and
    verification all list files here, so they agree on which files are images and on class order.

    Args:
        root: the folder.
        class_names: the classes in label order; default: the sorted non-hidden sub-folders.
        validate: also skip files whose bytes do not look complete (:func:`image_kind`; no decode).

    Returns:
        An :class:`ImageListing`: images directly in ``root`` first (label -1), then each class folder's;
        ``skipped`` holds the files passed over (in a class folder but not an image extension, or failed
        validation).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: no image under it.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Image folder not found: {root!r}. Pass a folder of images or of class sub-folders.")
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    if class_names is None:
        class_names = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    loose = [os.path.join(root, e) for e in entries if e.lower().endswith(IMAGE_EXTENSIONS)]  # a README is no image
    groups = [(-1, [path for path in loose if os.path.isfile(path)])]
    groups += [(label, _visible_files(os.path.join(root, name))) for label, name in enumerate(class_names)]
    listing = ImageListing([], [], tuple(class_names))
    for label, files in groups:
        for path in files:
            if not path.lower().endswith(IMAGE_EXTENSIONS) or (validate and image_kind(path) is None):
                listing.skipped.append(path)
            else:
                listing.paths.append(path)
                listing.labels.append(label)
    if not listing.paths:
        raise ValueError(f"No readable images ({', '.join(IMAGE_EXTENSIONS)}) under {root!r} "
                         f"(skipped {len(listing.skipped)} files).")
    return listing


def read_image_folder(folder, image_size, channels: int = 3, limit=None, seed: int = 0):
    """Reads up to ``limit`` images from ``folder`` as uint8 ``(N, H, W, C)``, with class labels.

    Files are listed by :func:`scan_image_folder`: class-folder trees (``folder/<class>/*.jpg``)
    give labels in sorted class order (empty class folders count, as in training); files
    outside class folders get label -1. With ``limit`` the files are a seeded random sample (all classes).
    Unreadable files are skipped with a warning on stderr (one bad file never stops a run).

    Returns:
        ``(images, labels, class_names)``.
    """
    from tqdm import tqdm  # a training requirement, not among the device runtime's (LiteRT, NumPy, Pillow)

    listing = scan_image_folder(folder)
    pairs = list(zip(listing.paths, listing.labels))
    if limit is not None and limit < len(pairs):
        order = np.random.default_rng(seed).permutation(len(pairs))[:limit]
        pairs = [pairs[i] for i in sorted(order)]
    images, labels = [], []
    for path, label in tqdm(pairs, desc=f"reading {os.path.basename(os.path.normpath(folder))}", unit="img",
                            leave=False, disable=len(pairs) < 50):
        try:
            images.append(load_image(path, image_size, channels))
        except ValueError as error:
            print(f"warning: skipped {error}", file=sys.stderr)
            continue
        labels.append(label)
    if not images:
        raise ValueError(f"None of the image files under {folder!r} could be read.")
    return np.stack(images), np.asarray(labels, np.int64), list(listing.class_names)
