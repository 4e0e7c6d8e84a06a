"""The Vision Transformer, composed from the layers with the functional API."""

import keras

from keras_vit.layers import ClassificationHead, PatchEncoder, Patches, TransformerBlock
from keras_vit.serialization import register


def _image_shape(image_size, channels):
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    image_size = tuple(image_size)
    if len(image_size) != 2 or not all(isinstance(s, int) and s > 0 for s in image_size):
        raise ValueError(
            f"image_size must be a positive int or (height, width); received image_size={image_size!r}."
        )
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive integer; received channels={channels!r}.")
    return image_size + (channels,)


def _check_divisible(image_size, patch_size, hidden_dim, num_heads):
    for axis, size in zip(("height", "width"), image_size):
        if size % patch_size:
            raise ValueError(
                f"image_size {axis} {size} is not divisible by patch_size={patch_size}. "
                f"Use image_size={size // patch_size * patch_size or patch_size} "
                f"or a patch_size that divides {size}."
            )
    if hidden_dim % num_heads:
        divisors = [h for h in range(1, min(hidden_dim, 32) + 1) if hidden_dim % h == 0]
        raise ValueError(
            f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}. "
            f"Choose num_heads from {divisors} or change hidden_dim."
        )


@register
class VisionTransformer(keras.Model):
    """ViT (Dosovitskiy et al., 2021) as a functional ``keras.Model``.

    ``image -> Patches -> PatchEncoder -> Dropout -> TransformerBlock x L ->
    ClassificationHead``. Its config is exactly its constructor arguments, so a
    ``.keras`` file reloads with ``keras.models.load_model``. Inputs are
    channels-last float images already normalized by the preprocessing contract
    (see :mod:`keras_vit.preprocessing`).

    Args:
        image_size: side of the square input image, or ``(height, width)``.
        patch_size: P; must divide the image height and width.
        num_classes: logits in the head; 0 returns pooled features.
        hidden_dim: D, the token width.
        num_layers: L, the number of encoder blocks.
        num_heads: attention heads per block; must divide D.
        mlp_dim: MLP inner width (4 * D in the paper).
        channels: input channels (3 for RGB).
        position_embedding: ``"learned"`` or ``"sincos"``.
        pooling: ``"token"`` ([class] token) or ``"gap"`` (mean of patch tokens).
        representation_size: optional pre-logits width (Linear-activation-Linear head).
        representation_activation: ``"gelu"`` or ``"tanh"`` (the original ViT / timm pre-logits) after it.
        dropout_rate: dropout after the embeddings, in blocks and before the head.
        attention_dropout_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly to this rate at the last block.
        layer_norm_epsilon: 1e-6 as in the paper's code.

    Returns:
        Logits ``(batch, num_classes)``.

    Example:
        >>> import numpy as np
        >>> model = VisionTransformer(image_size=32, patch_size=8, num_classes=10,
        ...                           hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64)
        >>> tuple(model(np.zeros((1, 32, 32, 3), "float32")).shape)
        (1, 10)

    Reference:
        Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
        Image Recognition at Scale", ICLR 2021.
    """

    def __init__(
        self,
        image_size=224,
        patch_size: int = 16,
        num_classes: int = 1000,
        hidden_dim: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        channels: int = 3,
        position_embedding: str = "learned",
        pooling: str = "token",
        representation_size=None,
        dropout_rate: float = 0.0,
        attention_dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        representation_activation: str = "gelu",
        dtype=None,
        **kwargs,
    ):
        shape = _image_shape(image_size, channels)
        for name, value in (("hidden_dim", hidden_dim), ("num_layers", num_layers), ("num_heads", num_heads),
                            ("mlp_dim", mlp_dim), ("patch_size", patch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; received {name}={value!r}.")
        _check_divisible(shape[:2], patch_size, hidden_dim, num_heads)
        grid = (shape[0] // patch_size, shape[1] // patch_size)

        images = keras.Input(shape=shape, name="images")
        x = Patches(patch_size, dtype=dtype, name="patches")(images)
        x = PatchEncoder(hidden_dim, position_embedding, grid, dtype=dtype, name="patch_encoder")(x)
        x = keras.layers.Dropout(dropout_rate, dtype=dtype, name="embedding_dropout")(x)
        for i in range(num_layers):
            rate = drop_path_rate * i / max(num_layers - 1, 1)
            x = TransformerBlock(
                num_heads, mlp_dim, dropout_rate, attention_dropout_rate, rate, layer_norm_epsilon,
                dtype=dtype, name=f"block_{i}",
            )(x)
        outputs = ClassificationHead(
            num_classes, pooling, representation_size, dropout_rate, layer_norm_epsilon,
            representation_activation, dtype=dtype, name="head",
        )(x)
        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        self.image_size = shape[:2] if shape[0] != shape[1] else shape[0]
        self.patch_size = patch_size
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.channels = channels
        self.position_embedding = position_embedding
        self.pooling = pooling
        self.representation_size = representation_size
        self.representation_activation = representation_activation
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon

    def __call__(self, *args, **kwargs):
        images = args[0] if args else kwargs.get("inputs")
        if hasattr(images, "shape"):
            self._check_images(tuple(images.shape))
        return super().__call__(*args, **kwargs)

    def _check_images(self, shape):
        expected = tuple(self.input_shape[1:])
        where = f"{type(self).__name__} {self.name!r} expects channels-last images (batch,) + {expected}"
        if len(shape) != 4:
            hint = " Add a batch axis with x[None]." if len(shape) == 3 else ""
            raise ValueError(f"{where}: rank 4; received rank {len(shape)}, shape {shape}.{hint}")
        if shape[3] is not None and shape[3] != expected[2]:
            raise ValueError(
                f"{where}; received shape {shape} with {shape[3]} channel(s) instead of {expected[2]}. "
                f"Convert the images (grayscale to RGB: np.repeat(x, 3, axis=-1); RGBA to RGB: x[..., :3]) "
                f"or create the model with channels={shape[3]}."
            )
        if None not in shape[1:3] and tuple(shape[1:3]) != expected[:2]:
            raise ValueError(
                f"{where}; received images of {shape[1]}x{shape[2]}. Resize them to "
                f"{expected[0]}x{expected[1]} or create the model with image_size={tuple(shape[1:3])} "
                f"(and resample its position embeddings, see keras_vit.weights)."
            )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_size": self.image_size,
            "patch_size": self.patch_size,
            "num_classes": self.num_classes,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "channels": self.channels,
            "position_embedding": self.position_embedding,
            "pooling": self.pooling,
            "representation_size": self.representation_size,
            "representation_activation": self.representation_activation,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "drop_path_rate": self.drop_path_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        if isinstance(config.get("image_size"), list):
            config["image_size"] = tuple(config["image_size"])
        return cls(**config)
