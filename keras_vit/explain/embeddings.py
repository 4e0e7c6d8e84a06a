"""What the embedding learned: position-embedding similarity and the patch filters' principal components.

Both read weights only (no images): the ``patch_encoder`` layer's
``position_embeddings`` and its ``projection`` kernel.
"""

import numpy as np

from keras_vit.explain.attention import num_patches, patch_grid


def _numpy(variable) -> np.ndarray:
    import keras  # Keras (TensorFlow) only when a model runs, as in explain.attention

    return keras.ops.convert_to_numpy(variable).astype(np.float64)


def position_embedding_similarity(model) -> np.ndarray:
    """Cosine similarity of each patch's position embedding with every other (the ViT paper's Fig. 7, centre).

    The [class] token's embedding is left out. A model that learned the image's 2-D
    layout shows, for each patch, high similarity to its own row and column.

    Args:
        model: a keras_vit ViT.

    Returns:
        float64 ``(rows, cols, rows, cols)``: ``[i, j]`` is the map of patch ``(i, j)``'s
        similarity to every patch; the diagonal ``[i, j, i, j]`` is 1.

    Example:
        >>> import numpy as np, keras_vit
        >>> similarity = position_embedding_similarity(keras_vit.create_model("vit_test"))
        >>> similarity.shape, round(float(similarity[1, 2, 1, 2]), 6)
        ((4, 4, 4, 4), 1.0)

    Reference:
        Dosovitskiy et al., ICLR 2021, Sec. 4.5 and Fig. 7 (centre).
    """
    table = _numpy(model.get_layer("patch_encoder").position_embeddings)[0]
    patches = num_patches(model)
    (grid_h, grid_w), _ = patch_grid(model, patches)
    embeddings = table[table.shape[0] - patches :]
    embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return (embeddings @ embeddings.T).reshape(grid_h, grid_w, grid_h, grid_w)


def patch_embedding_components(model, n: int = 28) -> np.ndarray:
    """The first ``n`` principal components of the patch-embedding filters (the ViT paper's Fig. 7, left).

    The projection kernel ``(P * P * C, D)`` is ``D`` filters of shape ``(P, P, C)``
    (the order :class:`~keras_vit.layers.Patches` flattens a patch in). Their
    principal components, after removing the mean filter, are the basis the model
    projects patches onto, ordered by the variance they explain. A component's sign
    is arbitrary; it is fixed so that its largest entry is positive.

    Args:
        model: a keras_vit ViT whose patches are cut from the image (not a hybrid's feature map).
        n: components to return (at most ``min(D, P * P * C)``).

    Returns:
        float64 ``(n, P, P, C)``, each component of unit norm.

    Raises:
        ValueError: when the kernel does not map ``P x P x C`` image patches.

    Example:
        >>> import keras_vit
        >>> patch_embedding_components(keras_vit.create_model("vit_test"), n=4).shape
        (4, 8, 8, 3)

    Reference:
        Dosovitskiy et al., ICLR 2021, Sec. 4.5 and Fig. 7 (left).
    """
    kernel = _numpy(model.get_layer("patch_encoder").projection.kernel)
    size = model.get_layer("patches").patch_size if "patches" in {l.name for l in model.layers} else None
    channels = model.input_shape[-1]
    if size is None or kernel.shape[0] != size * size * channels:
        raise ValueError(
            f"The projection kernel has {kernel.shape[0]} inputs, not the P * P * C pixels of an image patch; "
            f"patch_embedding_components needs a ViT that embeds image patches directly."
        )
    filters = kernel.T - kernel.T.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(filters, full_matrices=False)
    components = components[: min(n, len(components))]
    largest = np.argmax(np.abs(components), axis=1)
    components = components * np.sign(components[np.arange(len(components)), largest])[:, None]
    return components.reshape(-1, size, size, channels)
