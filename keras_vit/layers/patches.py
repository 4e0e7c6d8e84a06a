"""Cutting an image into non-overlapping P x P patches (ViT paper, Sec. 3.1)."""

import keras
from keras import ops

from keras_vit.layers.formulation import current_formulation
from keras_vit.registration import register


@register
class Patches(keras.layers.Layer):
    """Splits images into flattened patches in row-major order.

    ``(B, H, W, C) -> (B, N, P * P * C)`` with ``N = (H / P) * (W / P)``. Each
    patch is flattened as (row in patch, column in patch, channel), which is the
    order of a ``Conv2D`` kernel's ``(P, P, C, D)`` layout, so a strided
    convolution and ``Dense`` on these patches are the same linear map.

    Under the formulation ``patch_embedding="conv"`` the images pass through
    unchanged: :class:`PatchEncoder` then cuts and projects them in one strided
    convolution (no 6-D reshape in the traced graph).

    Args:
        patch_size: P, the side of a square patch in pixels.

    Returns:
        A tensor of shape ``(batch, num_patches, patch_size**2 * channels)``.

    Example:
        >>> import numpy as np
        >>> tuple(Patches(16)(np.zeros((2, 224, 224, 3), "float32")).shape)
        (2, 196, 768)

    Reference:
        Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021.
    """

    def __init__(self, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(patch_size, int) or isinstance(patch_size, bool) or patch_size < 1:
            raise ValueError(
                f"patch_size must be a positive integer; received patch_size={patch_size!r}."
            )
        self.patch_size = patch_size

    def _check(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Patches expects images of rank 4 (batch, height, width, channels); "
                f"received shape {tuple(input_shape)}. Add a batch axis with x[None] "
                f"or use channels-last images."
            )
        height, width = input_shape[1], input_shape[2]
        for axis, size in (("height", height), ("width", width)):
            if size is None:
                raise ValueError(f"Patches needs a static image {axis}; received shape {tuple(input_shape)}.")
            if size % self.patch_size:
                raise ValueError(
                    f"Image {axis} {size} is not divisible by patch_size={self.patch_size}. "
                    f"Resize images to a multiple of {self.patch_size} "
                    f"(for example {size // self.patch_size * self.patch_size or self.patch_size}) "
                    f"or choose a patch size that divides {size}."
                )
        return height // self.patch_size, width // self.patch_size, input_shape[3]

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, images):
        grid_h, grid_w, channels = self._check(tuple(images.shape))
        if current_formulation().patch_embedding == "conv":
            return images
        p = self.patch_size
        x = ops.reshape(images, (-1, grid_h, p, grid_w, p, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, grid_h * grid_w, p * p * channels))

    def compute_output_shape(self, input_shape):
        grid_h, grid_w, channels = self._check(input_shape)
        return (input_shape[0], grid_h * grid_w, self.patch_size**2 * channels)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}
