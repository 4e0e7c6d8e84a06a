"""What the encoder attends to: every block's attention weights, their rollout and their reach in pixels.

All three run the model's own layers in order, in inference mode, calling each
:class:`~keras_vit.layers.TransformerBlock` with ``return_attention_scores=True``;
the arithmetic after that is NumPy in float64. The patch grid is read from the
model (its ``patches`` layer's output and the input's aspect ratio), not assumed
to be ``image_size // patch_size``, so a model whose tokens come from another
stem (the hybrid ViT) works the same way.
"""

import math

import numpy as np

from keras_vit.preprocessing import Preprocessing


def _inputs(model, images):
    # uint8 pixels are normalized by the model's contract; float images are taken as normalized already
    return Preprocessing.for_model(model).to_inputs(images)


def _encoder_layers(model):
    """The layers between the input and the head, in order (the functional graph is a chain)."""
    layers = []
    for layer in model.layers[1:]:
        if layer.name == "head":
            return layers
        layers.append(layer)
    raise ValueError(f"Model {model.name!r} has no layer named 'head'; expected a keras_vit VisionTransformer.")


def _block_attention(model, inputs):
    """Yields each block's attention weights ``(batch, heads, tokens, tokens)`` as float64 NumPy."""
    import keras  # Keras (TensorFlow) only when a model runs: `keras-vit attention --help` and plots stay light

    from keras_vit.layers import TransformerBlock  # a layer module imports Keras, as above

    x = inputs
    for layer in _encoder_layers(model):
        if isinstance(layer, TransformerBlock):
            x, weights = layer(x, training=False, return_attention_scores=True)
            yield keras.ops.convert_to_numpy(weights).astype(np.float64)
        else:
            x = layer(x, training=False)


def num_patches(model) -> int:
    """Patch tokens the encoder sees: the ``patches`` layer's output length (or its position table's).

    Example:
        >>> import keras_vit
        >>> num_patches(keras_vit.create_model("vit_test"))
        16
    """
    names = {layer.name for layer in model.layers}
    if "patches" in names:
        return int(model.get_layer("patches").output.shape[1])
    return int(model.get_layer("patch_encoder").position_embeddings.shape[1]) - 1


def patch_grid(model, patches=None):
    """The patch grid ``(rows, cols)`` and one cell's size in pixels ``(height, width)``.

    Rows and columns follow the input's aspect ratio, so ``rows * cols == patches``
    for a 224 x 224 image with 196 patches (14 x 14 cells of 16 px) as for a
    hybrid whose 196 tokens come from a CNN feature map.

    Args:
        model: a keras_vit ViT.
        patches: number of patch tokens (default: :func:`num_patches`).

    Example:
        >>> import keras_vit
        >>> patch_grid(keras_vit.create_model("vit_test"))
        ((4, 4), (8.0, 8.0))
    """
    height, width = model.input_shape[1:3]
    patches = num_patches(model) if patches is None else int(patches)
    rows = max(1, round(math.sqrt(patches * height / width)))
    cols = patches // rows
    if rows * cols != patches or abs(height / rows - width / cols) > 1e-6 * height:
        raise ValueError(
            f"{patches} patch tokens do not tile a {height}x{width} image with square cells; "
            f"expected rows * cols == {patches} with rows / cols == {height} / {width}."
        )
    return (rows, cols), (height / rows, width / cols)


def attention_maps(model, images, batch_size: int = 32) -> np.ndarray:
    """Every block's attention weights for ``images``.

    Args:
        model: a keras_vit ViT.
        images: uint8 pixels ``(batch, H, W, C)`` (normalized here by the model's
            contract) or float images already normalized; one image ``(H, W, C)`` is a batch of one.
        batch_size: images per forward pass.

    Returns:
        float64 ``(batch, layers, heads, tokens, tokens)``; row ``q`` of a map is how query
        token ``q`` spreads its attention over the key tokens (it sums to 1). Token 0 is [class].

    Example:
        >>> import numpy as np, keras_vit
        >>> model = keras_vit.create_model("vit_test")
        >>> attention_maps(model, np.zeros((3, 32, 32, 3), np.uint8)).shape
        (3, 2, 2, 17, 17)
    """
    inputs = _inputs(model, images)
    chunks = [np.stack(list(_block_attention(model, inputs[i : i + batch_size])), axis=1)
              for i in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks, axis=0)


def attention_rollout(model, images, batch_size: int = 32) -> np.ndarray:
    """The [class] token's attention rollout over the patch grid (Abnar & Zuidema, 2020).

    Per block the heads are averaged, the residual connection is accounted for as
    ``0.5 * A + 0.5 * I`` and the rows are normalized; the blocks' matrices are
    multiplied from the first block to the last (``R = A_L ... A_1``). The [class]
    token's row of ``R`` over the patch tokens, normalized to sum to 1, is the map.

    Args:
        model, images, batch_size: as for :func:`attention_maps`.

    Returns:
        float64 ``(batch, rows, cols)`` on the grid of :func:`patch_grid`; each map sums to 1.

    Example:
        >>> import numpy as np, keras_vit
        >>> model = keras_vit.create_model("vit_test")
        >>> rollout = attention_rollout(model, np.zeros((2, 32, 32, 3), np.uint8))
        >>> rollout.shape, np.allclose(rollout.sum(axis=(1, 2)), 1.0)
        ((2, 4, 4), True)

    Reference:
        Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020;
        Dosovitskiy et al., ICLR 2021, Sec. 4.5 and Appendix D.8.
    """
    inputs = _inputs(model, images)
    maps = []
    for start in range(0, len(inputs), batch_size):
        rollout = None
        for weights in _block_attention(model, inputs[start : start + batch_size]):
            mixed = 0.5 * weights.mean(axis=1) + 0.5 * np.eye(weights.shape[-1])
            mixed /= mixed.sum(axis=-1, keepdims=True)
            rollout = mixed if rollout is None else mixed @ rollout
        maps.append(rollout[:, 0])
    rows = np.concatenate(maps, axis=0)
    patches = num_patches(model)
    (grid_h, grid_w), _ = patch_grid(model, patches)
    cls_to_patches = rows[:, rows.shape[1] - patches :]
    cls_to_patches = cls_to_patches / cls_to_patches.sum(axis=1, keepdims=True)
    return cls_to_patches.reshape(-1, grid_h, grid_w)


def patch_distances(model) -> np.ndarray:
    """Euclidean distances in pixels between the centres of every pair of patches, ``(patches, patches)``.

    Example:
        >>> import keras_vit
        >>> float(patch_distances(keras_vit.create_model("vit_test"))[0, 1])  # neighbours: one 8-px patch apart
        8.0
    """
    (grid_h, grid_w), (cell_h, cell_w) = patch_grid(model)
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    centres = np.stack([(rows.ravel() + 0.5) * cell_h, (cols.ravel() + 0.5) * cell_w], axis=1)
    return np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)


def mean_attention_distance(model, images, batch_size: int = 32) -> np.ndarray:
    """Mean attention distance per block and head, in pixels (the ViT paper's Fig. 7, right).

    For each query patch, the distance from its centre to every key patch's centre,
    weighted by the attention it pays that key, summed; then averaged over the
    query patches and the images. The paper's "receptive field size" of a head.

    The [class] token is left out on both sides: it has no place in the image. Its
    column is dropped and each query's weights over the patch keys are renormalized
    to sum to 1, so a head that mostly attends to [class] still reports where its
    remaining attention lands among the patches.

    Args:
        model, images, batch_size: as for :func:`attention_maps`.

    Returns:
        float64 ``(layers, heads)``, each between 0 and the image diagonal.

    Example:
        >>> import numpy as np, keras_vit
        >>> model = keras_vit.create_model("vit_test")
        >>> distance = mean_attention_distance(model, np.zeros((2, 32, 32, 3), np.uint8))
        >>> distance.shape, bool(0 < distance.min() and distance.max() < np.hypot(32, 32))
        ((2, 2), True)

    Reference:
        Dosovitskiy et al., ICLR 2021, Sec. 4.5, Fig. 7 (right) and Appendix D.7.
    """
    inputs = _inputs(model, images)
    distances = patch_distances(model)
    patches = distances.shape[0]
    total = 0.0
    for start in range(0, len(inputs), batch_size):
        per_block = []
        for weights in _block_attention(model, inputs[start : start + batch_size]):
            among_patches = weights[:, :, -patches:, -patches:]
            among_patches = among_patches / among_patches.sum(axis=-1, keepdims=True)
            per_block.append((among_patches * distances).sum(axis=-1).mean(axis=-1).sum(axis=0))
        total = total + np.stack(per_block)
    return total / len(inputs)
