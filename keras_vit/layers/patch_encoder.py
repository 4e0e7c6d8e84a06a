"""Patch embedding: linear projection, [class] token, position embeddings."""

import math

import keras
from keras import ops

from keras_vit.layers.formulation import current_formulation
from keras_vit.layers.position_embedding import sincos_2d
from keras_vit.registration import register

POSITION_EMBEDDINGS = ("learned", "sincos")


@register
class PatchEncoder(keras.layers.Layer):
    """Projects flattened patches to ``hidden_dim`` and adds the [class] token.

    Implements Eq. 1 of the paper: ``z0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos``.
    ``E`` is a ``Dense`` layer on the output of :class:`Patches`; with the same
    weights reshaped to ``(P, P, C, D)`` it equals a ``Conv2D`` with kernel and
    stride ``P`` (``tests/test_layers.py`` checks it). Under the formulation
    ``patch_embedding="conv"`` it is traced so: it receives the images themselves
    (``Patches`` passes them through) and projects them with that convolution.

    Args:
        hidden_dim: D, the width of every token.
        position_embedding: ``"learned"`` (default; initialised N(0, 0.02)) or
            ``"sincos"`` (fixed 2-D sine-cosine table; zeros for the class token).
        grid_size: ``(rows, cols)`` of the patch grid, needed by ``"sincos"``
            when the grid is not square; ``None`` means square.

    Returns:
        ``(batch, num_patches + 1, hidden_dim)``; token 0 is the [class] token.

    Example:
        >>> import numpy as np
        >>> patches = np.zeros((2, 196, 768), "float32")
        >>> tuple(PatchEncoder(hidden_dim=192)(patches).shape)
        (2, 197, 192)
    """

    def __init__(self, hidden_dim: int, position_embedding: str = "learned", grid_size=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(hidden_dim, int) or hidden_dim < 1:
            raise ValueError(f"hidden_dim must be a positive integer; received hidden_dim={hidden_dim!r}.")
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(
                f"position_embedding must be one of {POSITION_EMBEDDINGS}; "
                f"received position_embedding={position_embedding!r}."
            )
        self.hidden_dim = hidden_dim
        self.position_embedding = position_embedding
        self.grid_size = tuple(grid_size) if grid_size is not None else None
        self.projection = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=keras.initializers.LecunNormal(),
            dtype=self.dtype_policy,
            name="projection",
        )

    def _grid(self, num_patches):
        if self.grid_size is not None:
            if self.grid_size[0] * self.grid_size[1] != num_patches:
                raise ValueError(
                    f"grid_size={self.grid_size} does not hold {num_patches} patches."
                )
            return self.grid_size
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            raise ValueError(
                f"{num_patches} patches do not form a square grid; pass grid_size=(rows, cols)."
            )
        return side, side

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                f"PatchEncoder expects (batch, num_patches, patch_dim) with static sizes; "
                f"received shape {tuple(input_shape)}. Feed it the output of Patches."
            )
        num_patches = input_shape[1]
        self.projection.build(input_shape)
        self.class_token = self.add_weight(name="class_token", shape=(1, 1, self.hidden_dim), initializer="zeros")
        if self.position_embedding == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(1, num_patches + 1, self.hidden_dim),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )
        else:
            grid_h, grid_w = self._grid(num_patches)
            table = sincos_2d(grid_h, grid_w, self.hidden_dim)
            table = ops.concatenate([ops.zeros((1, self.hidden_dim)), table], axis=0)[None]
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(1, num_patches + 1, self.hidden_dim),
                initializer=keras.initializers.Constant(ops.convert_to_numpy(table)),
                trainable=False,
            )

    def call(self, patches):
        if current_formulation().patch_embedding == "conv":
            tokens = self._convolve(patches)
        else:
            tokens = self.projection(patches)
        class_token = ops.cast(self.class_token, tokens.dtype)
        class_tokens = ops.tile(class_token, (ops.shape(tokens)[0], 1, 1))
        tokens = ops.concatenate([class_tokens, tokens], axis=1)
        return tokens + ops.cast(self.position_embeddings, tokens.dtype)

    def _convolve(self, images):
        """``(B, H, W, C)`` images -> ``(B, N, D)``: the projection as one stride-P convolution."""
        num_patches = self.position_embeddings.shape[1] - 1
        if len(images.shape) != 4:
            raise ValueError(
                f"patch_embedding='conv' feeds PatchEncoder the images (batch, height, width, channels) "
                f"through Patches; received shape {tuple(images.shape)}."
            )
        grid_h, grid_w = self._grid(num_patches)
        p, channels = images.shape[1] // grid_h, images.shape[3]
        kernel = self.projection.kernel
        if p * p * channels != kernel.shape[0]:
            raise ValueError(
                f"{tuple(images.shape[1:])} images in a {grid_h}x{grid_w} grid give {p}x{p}x{channels} patches; "
                f"the projection takes {kernel.shape[0]} values per patch."
            )
        kernel = ops.reshape(ops.cast(kernel, self.compute_dtype), (p, p, channels, self.hidden_dim))
        tokens = ops.conv(ops.cast(images, self.compute_dtype), kernel, strides=p, padding="valid")
        tokens = tokens + ops.cast(self.projection.bias, tokens.dtype)
        return ops.reshape(tokens, (-1, num_patches, self.hidden_dim))

    def compute_output_shape(self, input_shape):
        num_tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], num_tokens, self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "position_embedding": self.position_embedding,
            "grid_size": self.grid_size,
        }
