"""Pictures of what :mod:`keras_vit.explain` computes, one function each, as matplotlib figures.

Each returns a ``matplotlib.figure.Figure``; save it with
:func:`keras_vit.explain.canvas.save_figure` (its pixel size is its size in
inches times its ``dpi``). Matplotlib is imported only here, when drawing.
"""

import math

import numpy as np
from PIL import Image

from keras_vit.explain.canvas import new_figure

PANEL = 2.0  # inches per image panel


def _displayable(image) -> np.ndarray:
    """uint8 pixels and floats in [0, 1] as they are; other floats (normalized inputs) stretched to [0, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8 and (image.min() < 0 or image.max() > 1):
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


def masked_image(image, rollout) -> np.ndarray:
    """The image times its rollout (the ViT paper's Fig. 6): the map, scaled to a maximum of 1, resized
    bilinearly to the image. Returns float ``(H, W, C)`` in [0, 1].

    Example:
        >>> import numpy as np
        >>> masked_image(np.full((8, 8, 3), 255, np.uint8), np.eye(2)).shape
        (8, 8, 3)
    """
    image = np.asarray(image)
    pixels = image / 255.0 if image.dtype == np.uint8 else _displayable(image).reshape(image.shape)
    mask = np.asarray(rollout, np.float32) / max(float(np.max(rollout)), 1e-12)
    mask = np.asarray(Image.fromarray(mask, mode="F").resize(image.shape[1::-1], Image.BILINEAR))
    return np.clip(pixels * mask[..., None], 0.0, 1.0)


def plot_attention(images, rollout, maps=None, titles=None):
    """One row per image: the image, the image masked by its rollout, the rollout, then each block's [class] attention.

    The maps have their own colour scales; their titles give their range, so a
    nearly uniform map (every patch near ``1 / patches``) is not mistaken for a sharp one.

    Args:
        images: ``(batch, H, W, C)`` uint8 pixels (or normalized floats).
        rollout: :func:`~keras_vit.explain.attention_rollout` output ``(batch, rows, cols)``.
        maps: optional :func:`~keras_vit.explain.attention_maps` output, for the per-block panels
            (each block's own [class]-token attention to the patches, heads averaged).
        titles: optional text per image (e.g. the predicted class).

    Returns:
        a ``Figure`` of ``PANEL * (3 + layers)`` by ``PANEL * batch`` inches.

    Example:
        >>> import numpy as np
        >>> figure = plot_attention(np.zeros((1, 32, 32, 3), np.uint8), np.full((1, 4, 4), 1 / 16))
        >>> [float(s) for s in figure.get_size_inches()]
        [6.0, 2.0]
    """
    images, rollout = np.asarray(images), np.asarray(rollout)
    blocks = None if maps is None else class_token_maps(maps, rollout.shape[1:])
    columns = 3 + (0 if blocks is None else blocks.shape[1])
    figure = new_figure(PANEL * columns, PANEL * len(images))
    axes = np.asarray(figure.subplots(len(images), columns, squeeze=False))
    for row, image in enumerate(images):
        _show(axes[row, 0], image)
        axes[row, 0].set_title(titles[row] if titles else "image", fontsize=8)
        _show(axes[row, 1], masked_image(image, rollout[row]))
        axes[row, 1].set_title("image x rollout", fontsize=8)
        panels = [("rollout", rollout[row])] + [(f"block {b + 1}", blocks[row, b]) for b in range(columns - 3)]
        for ax, (name, values) in zip(axes[row, 2:], panels):
            ax.imshow(values, cmap="inferno", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} {values.min():.0%}-{values.max():.0%}", fontsize=8)
    return figure


def plot_mean_distance(distances, image_size=None, uniform=None):
    """Mean attention distance against depth, one dot per head (the ViT paper's Fig. 7, right).

    Args:
        distances: :func:`~keras_vit.explain.mean_attention_distance` output ``(layers, heads)``.
        image_size: ``(height, width)``; draws the image diagonal, the largest possible distance.
        uniform: the distance of a head that attends evenly to every patch
            (``patch_distances(model).mean()``), drawn as a reference line: heads below it look near.

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
    if uniform is not None:
        ax.axhline(uniform, color="black", linewidth=0.8, linestyle=":", label="uniform attention")
    if image_size is not None:
        diagonal = math.hypot(*image_size)
        ax.axhline(diagonal, color="grey", linewidth=0.8, linestyle="--", label="image diagonal")
        ax.set_ylim(0, diagonal * 1.05)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xticks(range(1, layers + 1))
    ax.set_xlabel("network depth (block)")
    ax.set_ylabel("mean attention distance (pixels)")
    if heads <= 8:
        ax.legend(fontsize=7, loc="lower right", ncol=2)
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
