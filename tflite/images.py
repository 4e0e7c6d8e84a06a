"""Reading images with PIL: one file, or a folder (flat or ``class/NNNN.jpg``). No TensorFlow.

Example:
    >>> from keras_vit.tflite.images import load_image
    >>> pixels = load_image("cat.jpg", image_size=(32, 32))   # doctest: +SKIP
    >>> pixels.shape, pixels.dtype                             # doctest: +SKIP
    ((32, 32, 3), dtype('uint8'))
"""

import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


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
        ValueError: when the file is not an image PIL can decode (names the file and PIL's reason).
    """
    from PIL import Image, UnidentifiedImageError

    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file not found: {path!r}. Pass the path of a JPEG or PNG file.")
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}.get(
        interpolation, Image.BILINEAR
    )
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            if image.size != (width, height):
                image = image.resize((width, height), resample)
            pixels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"Cannot read image {path!r}: {error}. The file is corrupt or not an image; "
            f"pass a JPEG, PNG or BMP file."
        ) from error
    return pixels.reshape(height, width, channels)


def list_images(folder) -> list:
    """Sorted image files under ``folder``, recursively.

    Raises:
        ValueError: when ``folder`` is not a directory or holds no image.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"Image folder not found: {folder!r}. Pass a directory of image files.")
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
        raise ValueError(f"No image files ({', '.join(IMAGE_EXTENSIONS)}) under {folder!r}.")
    return found


def read_image_folder(folder, image_size, channels: int = 3, limit=None, seed: int = 0):
    """Reads up to ``limit`` images from ``folder`` as uint8 ``(N, H, W, C)``, with class labels.

    Class-folder trees (``folder/<class>/*.jpg``) give labels in sorted class order; a flat
    folder gives label -1. With ``limit`` the files are a seeded random sample (all classes).
    Unreadable files are skipped with a warning on stderr (one bad file never stops a run).

    Returns:
        ``(images, labels, class_names)``.
    """
    import sys

    from tqdm import tqdm

    files = list_images(folder)
    classes = sorted({os.path.relpath(os.path.dirname(f), folder) for f in files} - {"."})
    index = {name: i for i, name in enumerate(classes)}
    if limit is not None and limit < len(files):
        order = np.random.default_rng(seed).permutation(len(files))[:limit]
        files = [files[i] for i in sorted(order)]
    images, labels = [], []
    for path in tqdm(files, desc=f"reading {os.path.basename(os.path.normpath(folder))}", unit="img",
                     leave=False, disable=len(files) < 50):
        try:
            images.append(load_image(path, image_size, channels))
        except ValueError as error:
            print(f"warning: skipped {error}", file=sys.stderr)
            continue
        labels.append(index.get(os.path.relpath(os.path.dirname(path), folder), -1))
    if not images:
        raise ValueError(f"None of the image files under {folder!r} could be read.")
    return np.stack(images), np.asarray(labels, np.int64), classes
