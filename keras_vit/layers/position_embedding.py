"""Fixed 2-D sine-cosine position embeddings (MAE / "Attention is All You Need")."""

import numpy as np


def sincos_2d(grid_h: int, grid_w: int, dim: int, temperature: float = 10000.0) -> np.ndarray:
    """Returns a ``(grid_h * grid_w, dim)`` float32 table, rows in row-major order.

    A quarter of the channels each hold sin(y), cos(y), sin(x), cos(x) at
    geometrically spaced frequencies.

    Example:
        >>> sincos_2d(14, 14, 192).shape
        (196, 192)
    """
    if dim % 4:
        raise ValueError(
            f"Sin-cos position embeddings need hidden_dim divisible by 4; received {dim}. "
            f"Use position_embedding='learned' or a hidden_dim that is a multiple of 4."
        )
    y, x = np.meshgrid(np.arange(grid_h, dtype=np.float64), np.arange(grid_w, dtype=np.float64), indexing="ij")
    omega = 1.0 / temperature ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
    y = y.reshape(-1, 1) * omega
    x = x.reshape(-1, 1) * omega
    return np.concatenate([np.sin(y), np.cos(y), np.sin(x), np.cos(x)], axis=1).astype("float32")
