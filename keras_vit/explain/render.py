"""Pictures of what :mod:`keras_vit.explain` computes, one function each, as matplotlib figures.

Each returns a ``matplotlib.figure.Figure``; save it with
:func:`keras_vit.explain.canvas.save_figure` (its pixel size is its size in
inches times its ``dpi``). Matplotlib is imported only here, when drawing.
"""

import math

import numpy as np

from keras_vit.explain.canvas import new_figure

PANEL = 2.0  # inches per image panel


def _displayable(image) -> np.ndarray:
    """uint8 pixels as they are; normalized float images stretched to [0, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)
    return image[..., 0] if image.shape[-1] == 1 else image


def _show(ax, image, **kwargs):
    shown = _displayable(image)
    ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def class_token_maps(maps, grid) -> np.ndarray:
    """Each block's [class]-token attention over the patches, heads averaged: ``(batch, layers, rows, cols)``.

    Args:
        maps: :func:`~keras_vit.explain.attention_maps` output ``(batch, layers, heads, tokens, tokens)``.
        grid: ``(rows, cols)`` of the patch grid.

    Example:
        >>> import numpy as np
        >>> class_token_maps(np.full((1, 2, 2, 5, 5), 0.2), (2, 2)).shape
        (1, 2, 2, 2)
    """
    maps = np.asarray(maps)
    patches = grid[0] * grid[1]
    cls = maps[:, :, :, 0, maps.shape[-1] - patches :].mean(axis=2)
    return cls.reshape(maps.shape[0], maps.shape[1], grid[0], grid[1])


def plot_attention(images, rollout, maps=None, titles=None):
    """One row per image: the image, its attention rollout over it, then each block's [class] attention.

    Args:
        images: ``(batch, H, W, C)`` uint8 pixels (or normalized floats).
        rollout: :func:`~keras_vit.explain.attention_rollout` output ``(batch, rows, cols)``.
        maps: optional :func:`~keras_vit.explain.attention_maps` output, for the per-block panels.
        titles: optional text per image (e.g. the predicted class).

    Returns:
        a ``Figure`` of ``PANEL * (2 + layers)`` by ``PANEL * batch`` inches.

    Example:
        >>> import numpy as np
        >>> figure = plot_attention(np.zeros((1, 32, 32, 3), np.uint8), np.full((1, 4, 4), 1 / 16))
        >>> [float(s) for s in figure.get_size_inches()]
        [4.0, 2.0]
    """
    images, rollout = np.asarray(images), np.asarray(rollout)
    height, width = images.shape[1:3]
    blocks = None if maps is None else class_token_maps(maps, rollout.shape[1:])
    columns = 2 + (0 if blocks is None else blocks.shape[1])
    figure = new_figure(PANEL * columns, PANEL * len(images))
    axes = np.asarray(figure.subplots(len(images), columns, squeeze=False))
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    for row, image in enumerate(images):
        _show(axes[row, 0], image)
        axes[row, 0].set_title(titles[row] if titles else "image", fontsize=8)
        _show(axes[row, 1], image)
        axes[row, 1].imshow(rollout[row] / rollout[row].max(), cmap="inferno", alpha=0.6, extent=extent,
                            interpolation="bilinear", vmin=0, vmax=1)
        axes[row, 1].set_title("attention rollout", fontsize=8)
        for block in range(columns - 2):
            ax = axes[row, 2 + block]
            ax.imshow(blocks[row, block], cmap="inferno", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"block {block + 1} [class]", fontsize=8)
    return figure


def plot_mean_distance(distances, image_size=None):
    """Mean attention distance against depth, one dot per head (the ViT paper's Fig. 7, right).

    Args:
        distances: :func:`~keras_vit.explain.mean_attention_distance` output ``(layers, heads)``.
        image_size: ``(height, width)``; draws the image diagonal, the largest possible distance.

    Example:
        >>> import numpy as np
        >>> [float(s) for s in plot_mean_distance(np.ones((2, 3)), (32, 32)).get_size_inches()]
        [4.5, 3.5]
    """
    distances = np.asarray(distances)
    layers, heads = distances.shape
    figure = new_figure(4.5, 3.5)
    ax = figure.add_subplot()
    for head in range(heads):
        ax.scatter(np.arange(1, layers + 1), distances[:, head], s=18, label=f"head {head + 1}")
    if image_size is not None:
        diagonal = math.hypot(*image_size)
        ax.axhline(diagonal, color="grey", linewidth=0.8, linestyle="--")
        ax.set_ylim(0, diagonal * 1.05)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xticks(range(1, layers + 1))
    ax.set_xlabel("network depth (block)")
    ax.set_ylabel("mean attention distance (pixels)")
    if heads <= 8:
        ax.legend(fontsize=7, loc="lower right")
    return figure


def plot_position_similarity(similarity):
    """Tiles of each patch's position-embedding similarity to all patches (the ViT paper's Fig. 7, centre).

    Args:
        similarity: :func:`~keras_vit.explain.position_embedding_similarity` output ``(rows, cols, rows, cols)``.

    Example:
        >>> import numpy as np
        >>> [float(s) for s in plot_position_similarity(np.ones((2, 2, 2, 2))).get_size_inches()]
        [4.5, 4.0]
    """
    similarity = np.asarray(similarity)
    rows, cols = similarity.shape[:2]
    mosaic = np.full((rows * (rows + 1) - 1, cols * (cols + 1) - 1), np.nan)
    for i in range(rows):
        for j in range(cols):
            mosaic[i * (rows + 1) : i * (rows + 1) + rows, j * (cols + 1) : j * (cols + 1) + cols] = similarity[i, j]
    figure = new_figure(4.5, 4.0)
    ax = figure.add_subplot()
    shown = ax.imshow(mosaic, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([j * (cols + 1) + (cols - 1) / 2 for j in range(cols)], [str(j + 1) for j in range(cols)])
    ax.set_yticks([i * (rows + 1) + (rows - 1) / 2 for i in range(rows)], [str(i + 1) for i in range(rows)])
    ax.tick_params(length=0, labelsize=7)
    ax.set_xlabel("input patch column")
    ax.set_ylabel("input patch row")
    figure.colorbar(shown, ax=ax, shrink=0.8, label="cosine similarity")
    return figure


def plot_patch_components(components, columns: int = 7):
    """The principal components of the patch filters as small images (the ViT paper's Fig. 7, left).

    Each component is stretched to [0, 1] on its own (RGB for 3 channels, grey for 1).

    Args:
        components: :func:`~keras_vit.explain.patch_embedding_components` output ``(n, P, P, C)``.
        columns: images per row.

    Example:
        >>> import numpy as np
        >>> [float(s) for s in plot_patch_components(np.random.rand(8, 4, 4, 3), columns=4).get_size_inches()]
        [4.0, 2.0]
    """
    components = np.asarray(components)
    columns = min(columns, len(components))
    rows = -(-len(components) // columns)
    figure = new_figure(1.0 * columns, 1.0 * rows)
    axes = np.asarray(figure.subplots(rows, columns, squeeze=False)).ravel()
    for index, ax in enumerate(axes):
        if index < len(components):
            _show(ax, components[index])
            ax.set_title(f"PC {index + 1}", fontsize=7)
        else:
            ax.set_axis_off()
    return figure
