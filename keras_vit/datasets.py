"""Real image data sets that need no download.

``load_digits`` reads the handwritten digits that ship inside scikit-learn
(1,797 8x8 grayscale images, 10 classes; UCI "Optical Recognition of
Handwritten Digits", Alpaydin & Kaynak 1998), so the quickstart runs on a fresh
machine with no network. ``cifar10_dir`` finds the shared CIFAR-10 JPEG tree
used by the integration tests and benchmarks.
"""

import os
import tarfile

import numpy as np

from keras_vit.atomic import atomic_path

DIGIT_LABELS = tuple(str(i) for i in range(10))
CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """Returns ``(x_train, y_train), (x_test, y_test)`` as uint8 ``(N, 8, 8, 1)`` and int labels.

    The 0-16 intensities are scaled to 0-255 pixels; the split is stratified
    and seeded.

    Example:
        >>> (x, y), (xt, yt) = load_digits()
        >>> x.shape[1:], x.dtype, len(x) + len(xt)
        ((8, 8, 1), dtype('uint8'), 1797)
    """
    # scikit-learn only for the quickstart's digits: the CIFAR readers and the runtime do without it
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split  # as above

    data = sk_load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, data.target.astype(np.int64), test_size=test_fraction, random_state=seed, stratify=data.target
    )
    return (x_train, y_train), (x_test, y_test)


def shared_data_root():
    """``$KERAS_VIT_DATA`` or ``../shared/data`` next to the repository, if it exists."""
    candidates = [os.environ.get("KERAS_VIT_DATA")]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(here, "..", "shared", "data"))
    for path in candidates:
        if path and os.path.isdir(path):
            return os.path.abspath(path)
    return None


def cifar10_dir(split: str = "test", cache_dir=None):
    """Extracts the shared CIFAR-10 ``split`` once into a cache; returns its class-folder root.

    Returns ``None`` when the shared data is absent. The archive is extracted
    through :func:`keras_vit.atomic.atomic_path`, so an interrupted extraction
    leaves nothing that looks complete.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; received split={split!r}.")
    root = shared_data_root()
    archive = root and os.path.join(root, "cifar10", f"cifar10-{split}.tar.gz")
    if not archive or not os.path.isfile(archive):
        return None
    cache_dir = cache_dir or os.environ.get("KERAS_VIT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_vit"
    )
    target = os.path.join(cache_dir, "cifar10", split)
    if os.path.isdir(target):
        return target
    try:
        with atomic_path(target, directory=True) as temporary, tarfile.open(archive) as tar:
            tar.extractall(temporary, filter=_inside(split))
    except tarfile.FilterError as error:  # a member that would land outside the target: nothing is kept
        raise ValueError(f"Refused to extract {archive!r}: {error}. The archive is damaged or hostile; "
                         f"replace it with the original download.") from None
    except (tarfile.TarError, EOFError) as error:  # truncated or not a tar.gz
        raise ValueError(f"Cannot extract {archive!r} ({type(error).__name__}: {error}); replace it with the "
                         f"original download.") from None
    except OSError:
        if not os.path.isdir(target):  # else another process finished the same extraction first
            raise
    return target


def _inside(top: str):
    """A tar extraction filter that keeps the members under ``top/``, without that first folder."""

    def keep(member, destination):
        head, _, rest = member.name.removeprefix("./").partition("/")
        if head != top or not rest:
            return None
        return tarfile.data_filter(member.replace(name=rest, deep=False), destination)

    return keep
