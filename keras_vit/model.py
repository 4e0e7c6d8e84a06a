"""The Vision Transformer, composed from the layers with the functional API, and the contract it carries."""

import difflib
import inspect

import keras

from keras_vit.layers import ClassificationHead, ConvStem, PatchEncoder, Patches, TransformerBlock, export_formulation
from keras_vit.layers.conv_stem import stem_arguments
from keras_vit.preprocessing import Preprocessing, check_class_names
from keras_vit.registration import register


# keras.Model's own keyword arguments that VisionTransformer passes on.
_KERAS_KWARGS = ("name", "trainable")


def check_arguments(arguments, where: str = "VisionTransformer") -> None:
    """Refuses keyword arguments ``VisionTransformer`` does not take, naming the closest ones.

    Example:
        >>> check_arguments({"drop_path": 0.1})
        Traceback (most recent call last):
        ...
        TypeError: VisionTransformer got an unexpected keyword argument 'drop_path'. Did you mean 'drop_path_rate', ...?...
    """
    known = sorted((set(inspect.signature(VisionTransformer.__init__).parameters) - {"self", "kwargs"})
                   | set(_KERAS_KWARGS))
    for key in arguments:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise TypeError(f"{where} got an unexpected keyword argument {key!r}.{hint} "
                            f"VisionTransformer takes: {', '.join(known)}.")


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


def _class_names(class_names, num_classes):
    if class_names is None:
        return None
    return check_class_names(class_names, num_classes, "class_names", f"the model has num_classes={num_classes}")


def _check_divisible(image_size, patch_size, hidden_dim, num_heads, feature_size=None):
    for axis, size, cut in zip(("height", "width"), image_size, feature_size or image_size):
        if feature_size is not None and cut % patch_size:
            raise ValueError(
                f"The stem's feature map {axis} {cut} (from image {axis} {size}) is not divisible by "
                f"patch_size={patch_size}. With a stem, patch_size cuts the feature map: use patch_size=1 "
                f"(the paper's hybrid) or one that divides {cut}."
            )
        if size % patch_size and feature_size is None:
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


def _plain(value):
    """A config value without Keras' tracking wrappers (a tracked dict or list as a plain one)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@register
class VisionTransformer(keras.Model):
    """ViT (Dosovitskiy et al., 2021) as a functional ``keras.Model``.

    ``image -> [ConvStem] -> Patches -> PatchEncoder -> Dropout -> TransformerBlock x L ->
    ClassificationHead``; the stem is there only in the hybrid architecture (``stem=``). Its config is exactly its constructor arguments, so a
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
        mean, std: the input contract: inputs are ``(pixels / 255 - mean) / std``
            (one number or one per channel; 0.5 and 0.5, inputs in [-1, 1], by default).
        interpolation: how images are resized to ``image_size`` (``"bilinear"``,
            ``"bicubic"`` or ``"nearest"``).
        class_names: the names of the outputs, in order (``None``: unnamed).
        stem: ``None`` (default: the plain ViT, patches cut from the image), or the hybrid
            architecture of the paper (Sec. 3.1): a :class:`~keras_vit.layers.ConvStem` named in
            ``keras_vit.layers.conv_stem.STEMS`` (``"conv3x2"``, ``"conv3x1"``, ``"conv16"``) or given
            as a dict of its arguments. ``patch_size`` then cuts the stem's feature map (1: every
            feature-map cell is a token); the sublayer is named ``stem``.

    The contract (``image_size``, ``mean``, ``std``, ``interpolation``,
    ``class_names``) is saved in the ``.keras`` file, so training, evaluation and
    every export read it from the model (``model.preprocessing``).

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
        mean=0.5,
        std=0.5,
        interpolation: str = "bilinear",
        class_names=None,
        stem=None,
        dtype=None,
        **kwargs,
    ):
        check_arguments(kwargs)  # Keras' functional Model would drop a misspelt argument without a word
        shape = _image_shape(image_size, channels)
        contract = Preprocessing(shape[:2], channels, mean, std, interpolation)
        class_names = _class_names(class_names, num_classes)
        for name, value in (("hidden_dim", hidden_dim), ("num_layers", num_layers), ("num_heads", num_heads),
                            ("mlp_dim", mlp_dim), ("patch_size", patch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; received {name}={value!r}.")
        stem_layer = None if stem is None else ConvStem(**stem_arguments(stem), dtype=dtype, name="stem")
        feature = None if stem_layer is None else stem_layer.compute_output_shape((None,) + shape)[1:3]
        _check_divisible(shape[:2], patch_size, hidden_dim, num_heads, feature)
        grid = tuple(size // patch_size for size in (feature or shape[:2]))

        images = keras.Input(shape=shape, name="images")
        x = images if stem_layer is None else stem_layer(images)
        x = Patches(patch_size, dtype=dtype, name="patches")(x)
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
        if dtype is not None and not isinstance(dtype, keras.dtype_policies.DTypePolicyMap):
            # A functional Model drops ``dtype``; without it the saved config says float32 and
            # compile() would not add the loss scaling that mixed_float16 needs.
            self.dtype_policy = dtype

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
        self.mean, self.std, self.interpolation = contract.mean, contract.std, contract.interpolation
        self.class_names = class_names
        self.stem = stem

    @property
    def preprocessing(self) -> Preprocessing:
        """The input contract this model carries (size, channels, mean, std, interpolation)."""
        return Preprocessing.for_model(self)

    def set_contract(self, preprocessing=None, class_names=None):
        """Replaces the input contract and/or the class names in place (saved with the model).

        Args:
            preprocessing: a :class:`~keras_vit.preprocessing.Preprocessing` (or its dict) at this
                model's input size, e.g. a checkpoint's mean and std.
            class_names: the output names, one per class.

        Raises:
            ValueError: for a contract of another image size or a wrong number of names.
        """
        if preprocessing is not None:
            if isinstance(preprocessing, dict):
                preprocessing = Preprocessing.from_dict(preprocessing)
            own = self.preprocessing
            if (preprocessing.image_size, preprocessing.channels) != (own.image_size, own.channels):
                raise ValueError(
                    f"The contract is for {preprocessing.image_size} images with {preprocessing.channels} "
                    f"channel(s); this model takes {own.image_size} with {own.channels}."
                )
            self.mean, self.std = preprocessing.mean, preprocessing.std
            self.interpolation = preprocessing.interpolation
        if class_names is not None:
            self.class_names = _class_names(class_names, self.num_classes)
        return self

    def forward_features(self, images, training=False):
        """The encoder's tokens after the final LayerNorm, ``(batch, 1 + num_patches, hidden_dim)``.

        Token 0 is the [class] token. ``forward_head`` turns them into logits or pooled features.

        Example:
            >>> import numpy as np, keras_vit
            >>> model = keras_vit.create_model("vit_test")
            >>> tuple(model.forward_features(np.zeros((1, 32, 32, 3), "float32")).shape)
            (1, 17, 32)
        """
        self._check_images(tuple(images.shape))
        x = images
        for layer in self.layers[1:]:  # the functional graph is a chain: input, patches, ..., blocks, head
            if layer.name == "head":
                return layer.norm(x)
            x = layer(x, training=training)
        raise RuntimeError(f"{self.name!r} has no layer named 'head'.")

    def forward_head(self, tokens, pre_logits: bool = False, training=False):
        """Final-norm tokens -> logits; with ``pre_logits=True`` the pooled features before the last Dense."""
        head = self.get_layer("head")
        features = head.pool(tokens)
        return features if pre_logits else head.classify(features, training=training)

    def reset_classifier(self, num_classes: int, class_names=None, keep_pre_logits: bool = False):
        """A new model with these encoder weights and a fresh zero-initialised head.

        The paper's transfer recipe (Sec. 3.2): the pre-trained head, pre-logits
        layer included unless ``keep_pre_logits``, is replaced by one zero-initialised
        ``Dense(num_classes)``. ``num_classes=0`` gives a model whose output is the
        pooled features (embeddings, or the input of a head of your own). A Keras
        functional model cannot change its graph in place, so this returns a new one.

        Args:
            num_classes: outputs of the new head (0: none).
            class_names: their names (default: unnamed).
            keep_pre_logits: keep the ``representation_size`` pre-logits layer and its weights.

        Returns:
            a :class:`VisionTransformer` sharing nothing with this one (weights are copied).

        Example:
            >>> import keras_vit
            >>> model = keras_vit.create_model("vit_test")
            >>> model.reset_classifier(3, ["cat", "dog", "bird"]).output_shape
            (None, 3)
            >>> model.reset_classifier(0).output_shape
            (None, 32)
        """
        config = {**self.get_config(), "num_classes": num_classes, "class_names": class_names}
        if not keep_pre_logits:
            config["representation_size"] = None
        model = type(self).from_config(config)
        own = {variable.path: variable for variable in self.weights}
        for variable in model.weights:
            source = own.get(variable.path)
            if variable.path.startswith("head/head/"):
                variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
            elif source is not None and tuple(source.shape) == tuple(variable.shape):
                variable.assign(source)
        return model

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' own ``model.export``, traced in the export formulation (erf GELU, decomposed LayerNorm).

        The training graph's exact GELU lowers to ``Erfc``, which onnxruntime refuses; the export
        formulation computes the same function with ops every runtime has, so each of Keras' formats
        (``"tf_saved_model"``, ``"litert"``, ``"onnx"``, ``"openvino"``) loads in its runtime. A model
        never called yet is called once on zeros, since Keras' ONNX door needs a called model.
        For quantized, calibrated, verified TFLite files with the contract inside, use
        ``keras_vit.tflite`` (``keras-vit export``).

        Example:
            >>> import keras_vit
            >>> keras_vit.create_model("vit_test").export("/tmp/vit_test.onnx", format="onnx", verbose=False)
        """
        with export_formulation():
            if input_signature is None and not self._called:
                self(keras.ops.zeros((1,) + tuple(self.input_shape[1:])))
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature,
                                  **kwargs)

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
            "dtype": keras.dtype_policies.serialize(self._policy_map()),
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
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "class_names": None if self.class_names is None else list(self.class_names),
            "stem": _plain(self.stem),
        }

    def _policy_map(self):
        """The model's policy, or after ``model.quantize`` a map from each quantized layer's path to its policy.

        Every layer hands its ``dtype`` to its sublayers, so on reload each Dense finds its quantized
        policy by path and builds the quantized variables the ``.keras`` file holds (KerasHub does the same).
        """
        if isinstance(self.dtype_policy, keras.dtype_policies.DTypePolicyMap):
            return self.dtype_policy
        quantized = {layer.path: layer.dtype_policy for layer in self._flatten_layers() if layer.quantization_mode}
        if not quantized:
            return self.dtype_policy
        return keras.dtype_policies.DTypePolicyMap(self.dtype_policy, quantized)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        if isinstance(config.get("image_size"), list):
            config["image_size"] = tuple(config["image_size"])
        return cls(**config)
