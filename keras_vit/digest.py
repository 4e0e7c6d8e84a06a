"""The one file hasher: downloads (``keras_vit.weights.hub``) and exported files (``keras_vit.tflite.contract``).

Plain Python (hashlib), so the TensorFlow-free runtime can use it.
"""

import hashlib


def file_digest(path, algorithm: str = "sha256", header: bytes = b"") -> str:
    """The hex digest of ``header`` followed by the file's bytes, read in 1 MiB chunks.

    ``header`` serves git's blob ids: ``file_digest(p, "sha1", b"blob %d\\0" % size)``.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"abc")
        >>> file_digest(f.name)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.new(algorithm)
    digest.update(header)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
