"""Representative images for full-integer quantization: arrays, iterables or an image folder.

The converter runs the float model on these images and records each tensor's range, so they must
look like real inputs: a few hundred real images from the training distribution, preprocessed by
the model's contract. Random noise gives wrong ranges (and a useless int8 model).

Example:
    >>> import numpy as np
    >>> from keras_vit.preprocessing import Preprocessing
    >>> pixels = np.zeros((8, 32, 32, 3), np.uint8)
    >>> images = calibration_images(pixels, Preprocessing(image_size=32), count=4)
    >>> images.shape, images.dtype
    ((4, 32, 32, 3), dtype('float32'))
"""

import os

import numpy as np

DEFAULT_COUNT = 300


def calibration_images(source, preprocessing, count: int = DEFAULT_COUNT, seed: int = 0) -> np.ndarray:
    """Collects up to ``count`` normalized float32 images ``(N, H, W, C)`` from ``source``.

    Args:
        source: a folder of images (read with PIL, a seeded sample of ``count``), a numpy array
            (uint8 pixels are normalized by ``preprocessing``; float arrays are taken as already
            normalized), or an iterable of such arrays or of ``(images, labels)`` pairs.
        preprocessing: the model's :class:`keras_vit.preprocessing.Preprocessing`.
        count: how many images to keep (the first ``count`` of an array or iterable).
        seed: sampling seed for folders.

    Returns:
        float32 ``(N, H, W, C)`` with ``1 <= N <= count``.

    Raises:
        ValueError: for a missing source, wrong shapes or dtypes, or an empty source.
    """
    if source is None:
        raise ValueError(
            "calibration is required for full-integer modes: pass a few hundred real training images "
            "(a uint8 or normalized float32 array, an iterable of arrays, or an image folder path)."
        )
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"calibration count must be a positive integer; received {count!r}.")
    if isinstance(source, (str, os.PathLike)):
        from keras_vit.images import read_image_folder

        pixels, _, _ = read_image_folder(
            source, preprocessing.image_size, preprocessing.channels, limit=count, seed=seed
        )
        return preprocessing.to_inputs(pixels, f"calibration folder {os.fspath(source)!r}")
    if isinstance(source, np.ndarray):
        return preprocessing.to_inputs(source[:count], "calibration")
    collected, total = [], 0
    for item in source:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            item = item[0]
        item = np.asarray(item)
        batch = preprocessing.to_inputs(item, "each calibration item")
        collected.append(batch[: count - total])
        total += len(collected[-1])
        if total >= count:
            break
    if not collected:
        raise ValueError("calibration source yielded no images.")
    return np.concatenate(collected)


def representative_dataset(images: np.ndarray, description: str = "calibrating"):
    """A converter ``representative_dataset``: yields ``[image[None]]`` with a tqdm progress bar."""
    from tqdm import tqdm

    def generator():
        for image in tqdm(images, desc=description, unit="img", leave=False):
            yield [image[None].astype(np.float32)]

    return generator
