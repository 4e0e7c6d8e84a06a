"""A small convolutional stem whose feature map the hybrid ViT cuts into patches (ViT paper, Sec. 3.1)."""

import keras

from keras_vit.registration import register

POOLINGS = ("max", None)
ACTIVATIONS = ("relu", "gelu", None)

# Named stems for ``VisionTransformer(stem=...)``; each is ConvStem's constructor arguments.
STEMS = {
    # The Compact Convolutional Transformer's tokenizers (Hassani et al. 2021, "CCT-L/3x1" and "/3x2"):
    # 3x3 convolutions, each followed by ReLU and a stride-2 3x3 max pool. 32 px -> 16x16 or 8x8 tokens.
    "conv3x1": {"filters": [64], "kernel_size": 3, "strides": 1, "pooling": "max"},
    "conv3x2": {"filters": [64, 128], "kernel_size": 3, "strides": 1, "pooling": "max"},
    # A stride-16 stem of four stride-2 3x3 convolutions (Xiao et al. 2021, "Early Convolutions Help
    # Transformers See Better", without their BatchNorm): 224 px -> the 14x14 grid of a /16 ViT.
    "conv16": {"filters": [24, 48, 96, 192], "kernel_size": 3, "strides": 2, "pooling": None},
}


def stem_arguments(stem) -> dict:
    """ConvStem's constructor arguments for ``stem``: a name from :data:`STEMS` or a dict of them.

    Raises:
        ValueError: for an unknown name or another type, listing the named stems.
    """
    if isinstance(stem, str):
        if stem not in STEMS:
            raise ValueError(f"Unknown stem {stem!r}; named stems are {sorted(STEMS)}, "
                             f"or pass a dict of ConvStem arguments, e.g. {{'filters': [64, 128]}}.")
        return dict(STEMS[stem])
    if isinstance(stem, dict):
        return dict(stem)
    raise ValueError(f"stem must be None, one of {sorted(STEMS)} or a dict of ConvStem arguments; "
                     f"received stem={stem!r}.")


@register
class ConvStem(keras.layers.Layer):
    """``(B, H, W, C)`` images -> ``(B, H', W', filters[-1])`` feature map: conv -> activation -> pool, repeated.

    The hybrid architecture of the ViT paper (Sec. 3.1) takes the input sequence from
    a CNN feature map instead of raw image patches; with 1x1 patches the feature map's
    cells are the tokens. This stem is the small tokenizer that makes transformers
    train well on small data sets (CCT, Hassani et al. 2021): a few 3x3 convolutions
    with ReLU and max pooling. It has no BatchNorm, so training under ``tf.distribute``
    needs no synchronised statistics and the export graph is ``CONV_2D`` (ReLU fused)
    and ``MAX_POOL_2D``, both integer kernels in every TFLite mode.

    Args:
        filters: output channels of each convolution, e.g. ``[64, 128]`` (one layer each).
        kernel_size: side of every square kernel (odd; "same" padding).
        strides: stride of every convolution.
        pooling: ``"max"`` (3x3 max pool of stride 2, "same" padding, after each convolution) or ``None``.
        activation: ``"relu"`` (default), ``"gelu"`` or ``None`` after each convolution.

    Returns:
        ``(batch, H / s, W / s, filters[-1])`` with ``s = (strides * (2 if pooling else 1)) ** len(filters)``
        (rounded up per layer, as "same" padding does).

    Example:
        >>> import numpy as np
        >>> stem = ConvStem(filters=[16, 32])
        >>> tuple(stem(np.zeros((2, 32, 32, 3), "float32")).shape)
        (2, 8, 8, 32)

    Reference:
        Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021, Sec. 3.1 (hybrid architecture);
        Hassani et al., "Escaping the Big Data Paradigm with Compact Transformers", 2021 (the tokenizer).
    """

    def __init__(self, filters, kernel_size: int = 3, strides: int = 1, pooling="max", activation="relu",
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(filters, int) or not hasattr(filters, "__len__") or not len(filters) or not all(
                isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters):
            raise ValueError(f"filters must be a non-empty list of positive integers, one per convolution "
                             f"(e.g. [64, 128]); received filters={filters!r}.")
        for name, value in (("kernel_size", kernel_size), ("strides", strides)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; received {name}={value!r}.")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd so 'same' padding is symmetric; received "
                             f"kernel_size={kernel_size}. Use {kernel_size - 1} or {kernel_size + 1}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; received pooling={pooling!r}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; received activation={activation!r}.")
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        self.strides = strides
        self.pooling = pooling
        self.activation = activation
        self.convs = [
            keras.layers.Conv2D(f, kernel_size, strides=strides, padding="same", activation=activation,
                                kernel_initializer="he_normal", dtype=self.dtype_policy, name=f"conv_{i}")
            for i, f in enumerate(self.filters)
        ]
        self.pools = [
            keras.layers.MaxPooling2D(3, strides=2, padding="same", dtype=self.dtype_policy, name=f"pool_{i}")
            if pooling == "max" else None
            for i in range(len(self.filters))
        ]

    def _check(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape)[1:]:
            raise ValueError(f"ConvStem expects channels-last images (batch, height, width, channels) with static "
                             f"sizes; received shape {tuple(input_shape)}.")

    def build(self, input_shape):
        self._check(input_shape)
        shape = tuple(input_shape)
        for conv, pool in zip(self.convs, self.pools):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if pool is not None:
                pool.build(shape)
                shape = pool.compute_output_shape(shape)

    def call(self, images):
        x = images
        for conv, pool in zip(self.convs, self.pools):
            x = conv(x)
            if pool is not None:
                x = pool(x)
        return x

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        height, width = input_shape[1], input_shape[2]
        for _ in self.filters:
            height, width = -(-height // self.strides), -(-width // self.strides)
            if self.pooling == "max":
                height, width = -(-height // 2), -(-width // 2)
        return (input_shape[0], height, width, self.filters[-1])

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "kernel_size": self.kernel_size,
                "strides": self.strides, "pooling": self.pooling, "activation": self.activation}
