"""The graph that is traced for export: the model's own call, or a re-formulation with the same weights.

``keras_vit.layers`` traces LayerNorm and GELU in converter-friendly forms inside
``export_formulation()``. For integer inference on a CPU (XNNPACK) and for the Edge TPU a few
more choices matter, and they are made here, at trace time, without touching the model or its
weights:

* ``attention="sliced"``: the same products, with q / k / v cut from the 3-D ``qkv`` tensor before
  the head reshape, and the [class] token taken as a 3-D slice: XNNPACK takes every op of the
  float graph then (the model's 5-D slices stay outside its partitions).
* ``attention="batch_matmul"``: the model's own attention (``q k^T`` and ``attn v`` become
  ``BATCH_MATMUL``). ``"per_head"``: each head's two products are traced as 2-D matmuls, so the
  converter emits ``FULLY_CONNECTED`` ops with an activation as the "weights" operand.
* ``unfold_batchmatmul=True``: the converter's own unfolding of every activation x activation
  ``BATCH_MATMUL`` into ``SPLIT`` + one ``FULLY_CONNECTED`` per head (the full-integer defaults).
* ``patch_embedding="conv"``: the patch projection as one ``CONV_2D`` (kernel = stride = P, the
  Dense kernel reshaped to ``(P, P, C, D)``) instead of a 6-D reshape/transpose + ``FULLY_CONNECTED``
  (the Edge TPU takes no tensor with more than 3 dimensions larger than 1).
* ``gelu``: ``"erf"`` (exact; the converter fuses it into the builtin ``GELU``), ``"tanh"`` (the
  tanh approximation; also fused into ``GELU``), ``"sigmoid"`` (the same tanh approximation
  written as ``x * sigmoid(2 * sqrt(2/pi) * (x + 0.044715 x^3))``, an identity, which the
  converter leaves as ``MUL`` / ``ADD`` / ``LOGISTIC``: ops the Edge TPU compiler and XNNPACK's
  int8 kernels take).

``"keras"`` formulation = the model's call traced in ``export_formulation(gelu)``.

Example:
    >>> fn = serving_function(model, Formulation(gelu="sigmoid"))     # doctest: +SKIP
"""

import dataclasses
import math

ATTENTIONS = ("batch_matmul", "sliced", "per_head")
GELUS = ("erf", "tanh", "sigmoid")
PATCH_EMBEDDINGS = ("dense", "conv")
LAYER_NORMS = ("decomposed", "newton")


@dataclasses.dataclass(frozen=True)
class Formulation:
    """How attention and GELU are written in the exported graph (see the module docstring)."""

    attention: str = "batch_matmul"
    gelu: str = "erf"
    patch_embedding: str = "dense"
    layer_norm: str = "decomposed"
    # A converter setting, not a traced form: BATCH_MATMUL between activations becomes SPLIT + one
    # FULLY_CONNECTED per head (LiteRT's int8 BATCH_MATMUL kernel is ~10x slower than per-head int8 FCs on x86).
    unfold_batchmatmul: bool = False

    def __post_init__(self):
        if self.layer_norm not in LAYER_NORMS:
            raise ValueError(f"layer_norm must be one of {LAYER_NORMS}; received layer_norm={self.layer_norm!r}.")
        if self.patch_embedding not in PATCH_EMBEDDINGS:
            raise ValueError(
                f"patch_embedding must be one of {PATCH_EMBEDDINGS}; received patch_embedding={self.patch_embedding!r}."
            )
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}; received attention={self.attention!r}.")
        if self.gelu not in GELUS:
            raise ValueError(f"gelu must be one of {GELUS}; received gelu={self.gelu!r}.")

    @property
    def uses_model_call(self) -> bool:
        return (self.attention == "batch_matmul" and self.gelu in ("erf", "tanh") and self.patch_embedding == "dense"
                and self.layer_norm == "decomposed")


def _gelu(x, form):
    import tensorflow as tf

    if form == "sigmoid":
        c = 2.0 * math.sqrt(2.0 / math.pi)
        return x * tf.sigmoid(c * (x + 0.044715 * (x * x * x)))
    if form == "tanh":
        return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))
    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


def _attention(layer, tokens, form):
    import tensorflow as tf

    num_tokens, dim = tokens.shape[1], tokens.shape[2]
    heads, head_dim = layer.num_heads, dim // layer.num_heads
    qkv = layer.qkv(tokens)  # (1, N, 3D): [q | k | v], heads contiguous inside each
    if form == "sliced":
        # q, k, v cut from the 3-D qkv tensor along its last axis (XNNPACK takes these slices; it
        # leaves the model's 5-D qkv[0] / qkv[1] / qkv[2] slices outside its partitions).
        def heads_first(x):
            return tf.transpose(tf.reshape(x, (-1, num_tokens, heads, head_dim)), (0, 2, 1, 3))

        query = heads_first(qkv[:, :, :dim] * (head_dim**-0.5))
        key, value = heads_first(qkv[:, :, dim:2 * dim]), heads_first(qkv[:, :, 2 * dim:])
        weights = tf.nn.softmax(tf.matmul(query, key, transpose_b=True), axis=-1)
        attended = tf.reshape(tf.transpose(tf.matmul(weights, value), (0, 2, 1, 3)), (-1, num_tokens, dim))
        return layer.proj(attended)
    if form == "batch_matmul":
        qkv = tf.transpose(tf.reshape(qkv, (-1, num_tokens, 3, heads, head_dim)), (2, 0, 3, 1, 4))
        query, key, value = qkv[0] * (head_dim**-0.5), qkv[1], qkv[2]
        weights = tf.nn.softmax(tf.matmul(query, key, transpose_b=True), axis=-1)
        attended = tf.reshape(tf.transpose(tf.matmul(weights, value), (0, 2, 1, 3)), (-1, num_tokens, dim))
        return layer.proj(attended)
    qkv = tf.reshape(qkv, (num_tokens, 3 * dim))  # batch 1: a 2-D matrix
    outputs = []
    for h in range(heads):
        query = qkv[:, h * head_dim:(h + 1) * head_dim] * (head_dim**-0.5)
        key = qkv[:, dim + h * head_dim:dim + (h + 1) * head_dim]
        value = qkv[:, 2 * dim + h * head_dim:2 * dim + (h + 1) * head_dim]
        weights = tf.nn.softmax(tf.matmul(query, key, transpose_b=True), axis=-1)  # (N, N)
        # weights @ value == FC(weights, value^T): written so, the converter emits FULLY_CONNECTED.
        outputs.append(tf.matmul(weights, tf.transpose(value), transpose_b=True))  # (N, head_dim)
    attended = tf.reshape(tf.concat(outputs, axis=-1), (1, num_tokens, dim))
    return layer.proj(attended)


def _embed(model, images, formulation):
    import tensorflow as tf

    encoder = model.get_layer("patch_encoder")
    if formulation.patch_embedding == "dense":
        return encoder(model.get_layer("patches")(images))
    p, channels = model.patch_size, images.shape[-1]
    kernel = tf.reshape(encoder.projection.kernel, (p, p, channels, encoder.hidden_dim))
    x = tf.nn.conv2d(images, kernel, strides=p, padding="VALID") + encoder.projection.bias
    x = tf.reshape(x, (1, -1, encoder.hidden_dim))
    tokens = tf.concat([tf.cast(encoder.class_token, x.dtype), x], axis=1)
    return tokens + encoder.position_embeddings


def _layer_norm(layer, x, form):
    import tensorflow as tf

    if form == "decomposed":
        return layer(x)
    d = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    variance = tf.reduce_mean(d * d, axis=-1, keepdims=True) + layer.epsilon
    y = tf.math.rsqrt(variance)
    # One Newton step y <- y (1.5 - 0.5 v y^2): the quantized RSQRT lookup table is coarse near 0
    # (small-variance tokens); the step works on v y^2 ~ 1, a range integer MULs represent well.
    y = y * (1.5 - 0.5 * (variance * (y * y)))
    return d * y * layer.gamma + layer.beta


def _block(block, tokens, formulation):
    norm = formulation.layer_norm
    tokens = tokens + _attention(block.attention, _layer_norm(block.norm1, tokens, norm), formulation.attention)
    mlp = block.mlp
    return tokens + mlp.fc2(_gelu(mlp.fc1(_layer_norm(block.norm2, tokens, norm)), formulation.gelu))


def _head(head, tokens, formulation):
    import tensorflow as tf

    tokens = _layer_norm(head.norm, tokens, formulation.layer_norm)
    if head.pooling == "token":  # a 3-D slice + reshape (XNNPACK does not take the shrinking slice tokens[:, 0])
        x = tf.reshape(tokens[:, :1], (-1, tokens.shape[-1]))
    else:
        x = tf.reduce_mean(tokens[:, 1:], axis=1)
    if head.pre_logits is not None:
        x = _gelu(head.pre_logits(x), formulation.gelu)
    return head.head(x) if head.head is not None else x


def _is_vision_transformer(model) -> bool:
    names = {layer.name for layer in model.layers}
    return {"patches", "patch_encoder", "head"} <= names and hasattr(model, "num_layers")


def forward(model, images, formulation: Formulation):
    """The ViT forward pass at inference, written with ``formulation`` on the model's own layers.

    A model that is not a ``VisionTransformer`` (no ``patches`` / ``patch_encoder`` / ``head``
    layers) is traced through its own call, in ``export_formulation()``.
    """
    from keras_vit.layers import export_formulation

    with export_formulation(gelu="tanh" if formulation.gelu == "tanh" else "erf", layer_norm="decomposed"):
        if formulation.uses_model_call or not _is_vision_transformer(model):
            return model(images, training=False)
        x = _embed(model, images, formulation)
        for i in range(model.num_layers):
            x = _block(model.get_layer(f"block_{i}"), x, formulation)
        return _head(model.get_layer("head"), x, formulation)


def write_saved_model(model, directory: str, formulation: Formulation, input_name: str = "images",
                      output_name: str = "logits") -> None:
    """Traces ``forward`` with a batch-1 fixed signature and writes a SavedModel (variables frozen later)."""
    import keras
    import tensorflow as tf

    shape = (1,) + tuple(model.input_shape[1:])
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        return {output_name: forward(model, images, formulation)}

    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec(shape, tf.float32, name=input_name)]
    )
    archive.write_out(directory, verbose=False)
