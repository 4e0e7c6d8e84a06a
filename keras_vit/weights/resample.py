"""Position embeddings for a new image size: one shared resampler (``keras_vit.factory.resize_model`` uses it).

Fine-tuning at a higher resolution keeps the patch size, so the patch grid
grows; the learned position embeddings are interpolated in 2-D over the grid
(ViT paper, Sec. 3.2) while the class-token row is kept as it is.

The interpolation reproduces PyTorch's ``F.interpolate(..., align_corners=False)``
in both of its modes (``tests/test_weights_resample.py`` compares them):
``antialias=True`` is timm's default (``resample_abs_pos_embed``; PIL-style
kernels, bicubic a=-0.5, widened when shrinking), ``antialias=False`` the plain
kernels (bicubic a=-0.75), as timm's ``.npz`` reader and Hugging Face's
``interpolate_pos_encoding`` use.
"""

import math

import numpy as np

METHODS = ("bilinear", "bicubic")


def _kernel(method, antialias):
    if method == "bilinear":
        return 1.0, lambda x: np.clip(1.0 - np.abs(x), 0.0, None)
    a = -0.5 if antialias else -0.75

    def cubic(x):
        x = np.abs(x)
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x <= 1, near, np.where(x < 2, far, 0.0))

    return 2.0, cubic


def interpolation_matrix(in_size: int, out_size: int, method: str = "bicubic", antialias: bool = True) -> np.ndarray:
    """The ``(out_size, in_size)`` matrix that resamples one axis (``align_corners=False``)."""
    support, kernel = _kernel(method, antialias)
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size), np.float64)
    for o in range(out_size):
        if antialias:
            stretch = max(scale, 1.0)
            center = scale * (o + 0.5)
            lo = max(int(center - support * stretch + 0.5), 0)
            hi = min(int(center + support * stretch + 0.5), in_size)
            taps = np.arange(lo, hi)
            w = kernel((taps - center + 0.5) / stretch)
            matrix[o, taps] = w / w.sum()
            continue
        src = scale * (o + 0.5) - 0.5
        if method == "bilinear":
            src = max(src, 0.0)
            i0 = min(int(math.floor(src)), in_size - 1)
            frac = src - i0
            matrix[o, i0] += 1.0 - frac
            matrix[o, min(i0 + 1, in_size - 1)] += frac
        else:
            i0 = int(math.floor(src))
            frac = src - i0
            for tap in range(-1, 3):
                matrix[o, min(max(i0 + tap, 0), in_size - 1)] += kernel(np.float64(tap - frac))
    return matrix


def resample_position_embeddings(posemb, new_grid, num_prefix_tokens: int = 1, method: str = "bicubic",
                                 antialias: bool = True, old_grid=None) -> np.ndarray:
    """Interpolates position embeddings ``(1, prefix + H*W, D)`` to a ``new_grid`` of patches.

    Args:
        posemb: array ``(1, num_prefix_tokens + H * W, D)``.
        new_grid: ``(rows, cols)`` of the target patch grid (or one int for a square).
        num_prefix_tokens: leading rows kept unchanged (1: the class token).
        method: ``"bilinear"`` or ``"bicubic"``.
        antialias: PIL-style kernels (timm's default); ``False`` for the plain ones.
        old_grid: ``(rows, cols)`` of ``posemb``; a square grid is assumed when ``None``.

    Returns:
        float32 array ``(1, num_prefix_tokens + rows * cols, D)``.

    Example:
        >>> import numpy as np
        >>> resample_position_embeddings(np.zeros((1, 1 + 14 * 14, 192)), (24, 24)).shape
        (1, 577, 192)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; received method={method!r}.")
    posemb = np.asarray(posemb, np.float32)
    if posemb.ndim != 3 or posemb.shape[0] != 1:
        raise ValueError(f"posemb must have shape (1, tokens, dim); received shape {posemb.shape}.")
    new_grid = (new_grid, new_grid) if isinstance(new_grid, int) else tuple(new_grid)
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[0, num_prefix_tokens:]
    if old_grid is None:
        side = math.isqrt(grid.shape[0])
        if side * side != grid.shape[0]:
            raise ValueError(
                f"{grid.shape[0]} position embeddings (after {num_prefix_tokens} prefix tokens) do not form a square "
                f"grid; pass old_grid=(rows, cols)."
            )
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != grid.shape[0]:
        raise ValueError(f"old_grid={tuple(old_grid)} does not hold {grid.shape[0]} position embeddings.")
    if tuple(old_grid) == new_grid:
        return posemb.copy()
    rows = interpolation_matrix(old_grid[0], new_grid[0], method, antialias)
    cols = interpolation_matrix(old_grid[1], new_grid[1], method, antialias)
    table = grid.reshape(old_grid[0], old_grid[1], -1).astype(np.float64)
    resized = np.einsum("ai,ijd,bj->abd", rows, table, cols).reshape(1, -1, grid.shape[-1])
    return np.concatenate([prefix, resized.astype(np.float32)], axis=1)
