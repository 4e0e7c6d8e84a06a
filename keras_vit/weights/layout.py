"""Our weight paths, and the two layout changes every source format needs.

A keras_vit model's weights are addressed by ``variable.path`` (frozen names):
``patch_encoder/{projection/kernel, projection/bias, class_token,
position_embeddings}``, ``block_{i}/{norm1,norm2}/{gamma,beta}``,
``block_{i}/attention/{qkv,proj}/{kernel,bias}``,
``block_{i}/mlp/{fc1,fc2}/{kernel,bias}``, ``head/norm/{gamma,beta}``,
``head/pre_logits/{kernel,bias}`` and ``head/head/{kernel,bias}``. Dense
kernels are ``(in, out)``; PyTorch ``Linear`` weights are ``(out, in)``.
"""

import collections

import numpy as np

PATCH_KERNEL = "patch_encoder/projection/kernel"
PATCH_BIAS = "patch_encoder/projection/bias"
CLASS_TOKEN = "patch_encoder/class_token"
POSITION_EMBEDDINGS = "patch_encoder/position_embeddings"
HEAD_PREFIXES = ("head/head/", "head/pre_logits/")

# weights: our path -> array; unexpected: source keys nobody maps; ignored: source keys documented as
# outside the classification path (dropped without failing); facts: what the file says about the
# architecture that shapes alone cannot show (e.g. {"num_heads": 3}).
Converted = collections.namedtuple("Converted", ["weights", "unexpected", "ignored", "facts"])


def block(i: int, name: str) -> str:
    """``block(3, "mlp/fc1/kernel")`` -> ``"block_3/mlp/fc1/kernel"``."""
    return f"block_{i}/{name}"


def conv_to_dense(kernel_oihw: np.ndarray) -> np.ndarray:
    """A PyTorch ``Conv2d`` weight ``(D, C, P, P)`` -> our patch ``Dense`` kernel ``(P*P*C, D)``.

    Our patches are flattened (row, column, channel), so the kernel is the
    ``(P, P, C, D)`` convolution kernel reshaped.
    """
    return np.transpose(kernel_oihw, (2, 3, 1, 0)).reshape(-1, kernel_oihw.shape[0])


def dense_to_conv(kernel: np.ndarray, patch_size: int, channels: int) -> np.ndarray:
    """The inverse of :func:`conv_to_dense`: ``(P*P*C, D)`` -> ``(D, C, P, P)``."""
    return np.transpose(kernel.reshape(patch_size, patch_size, channels, -1), (3, 2, 0, 1))


def count_blocks(keys, pattern: str) -> int:
    """How many consecutive ``pattern.format(i)`` keys exist from ``i = 0``."""
    keys = set(keys)
    count = 0
    while pattern.format(count) in keys:
        count += 1
    return count


def map_keys(source: dict, table: dict, weights: dict) -> set:
    """Copies ``source[k]`` to ``weights[table[k]]`` (transposing 2-D ``Linear`` weights when the
    table's value is ``(name, "T")``); returns the source keys used."""
    used = set()
    for key, target in table.items():
        if key not in source:
            continue
        value = np.asarray(source[key])
        if isinstance(target, tuple):
            target, value = target[0], value.T
        weights[target] = value
        used.add(key)
    return used
