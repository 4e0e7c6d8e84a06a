"""Atomic file writes: a file appears complete under its name, or not at all.

Everything keras_vit writes (models, weights, contracts, JSON, CSV, a data cache) goes through here:
the bytes land in a temporary file in the target's folder, are flushed to disk, and are moved over
the target with ``os.replace``, which is atomic within one file system. Any failure, including
Ctrl-C, removes the temporary file and leaves the old target untouched. New files get the
permissions of a normal ``open(path, "w")`` (``0o666 & ~umask``), not ``mkstemp``'s private
``0o600``. No NumPy, TensorFlow or Keras, so the on-device runtime can use it.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> atomic_write(os.path.join(folder, "labels.txt"), "cat\\ndog\\n")
    >>> with atomic_path(os.path.join(folder, "weights.npz")) as temporary:  # a writer that wants a path
    ...     with open(temporary, "wb") as f:
    ...         _ = f.write(b"...")
    >>> sorted(os.listdir(folder))
    ['labels.txt', 'weights.npz']
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator


def _normal_mode(directory: bool = False) -> int:
    """The mode ``open()`` (``0o666 & ~umask``) or ``os.mkdir()`` (``0o777 & ~umask``) gives."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def _fsync(path: str) -> None:
    """Flushes a file, or every file of a folder tree, to disk."""
    if os.path.isdir(path):
        for folder, _, files in os.walk(path):
            for name in files:
                _fsync(os.path.join(folder, name))
        return
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(path, directory: bool = False) -> Iterator[str]:
    """Yields a temporary path beside ``path``; moves it onto ``path`` only if the block succeeds.

    For writers that take a file name (``model.save``, ``np.savez``): the temporary name ends with
    the target's own extension (``.keras``, ``.npz``), so writers that check or append one are content.

    Args:
        path: the target file (or folder, with ``directory=True``). Its parent folder is created.
        directory: yield an empty temporary folder instead of a file; the target must not exist
            (``os.replace`` does not replace a non-empty folder).

    Yields:
        The temporary path (an existing empty file or folder).

    Raises:
        Whatever the block raises; the temporary is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    prefix = "." + name + "."
    if directory:
        temporary = tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=folder)
    else:
        handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=".partial" + os.path.splitext(name)[1], dir=folder)
        os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, _normal_mode(directory))
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def atomic_write(path, data) -> None:
    """Writes ``data`` (``bytes`` as is, ``str`` as UTF-8) to ``path`` atomically.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "summary.json")
        >>> atomic_write(target, '{"accuracy": 0.95}')
        >>> open(target).read()
        '{"accuracy": 0.95}'
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write writes bytes or str; received {type(data).__name__}.")
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
