"""Train-time augmentation in TensorFlow, seeded per example so every run repeats exactly.

Image functions take a float32 ``(H, W, C)`` image with pixels in [0, 255] and
a stateless seed (``int32 (2,)``); batch functions (Mixup, CutMix) take a batch
and one-hot labels. Nothing here lives in the model graph.

References:
    Pad-and-crop + flip: He et al., "Deep Residual Learning", 2016 (CIFAR recipe).
    Random resized crop: Szegedy et al., "Going Deeper with Convolutions", 2015.
    RandAugment: Cubuk et al., 2020. Mixup: Zhang et al., 2018. CutMix: Yun et al., 2019.
"""

import math

import tensorflow as tf


def _split(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def pad_and_crop(image, seed, padding: int = 4):
    """Reflect-pads by ``padding`` pixels and crops back to the original size at a random offset."""
    shape = tf.shape(image)
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]], mode="REFLECT")
    return tf.image.stateless_random_crop(padded, shape, seed=seed)


def random_resized_crop(image, seed, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """Crops a random area fraction ``scale`` and aspect ``ratio``, resized to ``size``."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros((1, 0, 4)), seed=seed, min_object_covered=0.0,
        aspect_ratio_range=ratio, area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, size, method="bilinear", antialias=True)


def flip(image, seed):
    """Horizontal flip with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


# ----------------------------------------------------------------------------- RandAugment
def _blend(a, b, factor):
    return tf.clip_by_value(b + factor * (a - b), 0.0, 255.0)


def _gray(image):
    gray = tf.reduce_mean(image, axis=-1, keepdims=True)
    return tf.broadcast_to(gray, tf.shape(image))


def _transform(image, matrix):
    """Applies a projective transform (8 coefficients, output -> input) with nearest fill 128."""
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=tf.cast(matrix, tf.float32)[None], output_shape=tf.shape(image)[:2],
        interpolation="BILINEAR", fill_mode="CONSTANT", fill_value=128.0,
    )
    return out[0]


def _rotate(image, level):
    angle = level * 30.0 * math.pi / 180.0
    h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x0 = (w - 1) / 2 - (cos * (w - 1) / 2 - sin * (h - 1) / 2)
    y0 = (h - 1) / 2 - (sin * (w - 1) / 2 + cos * (h - 1) / 2)
    return _transform(image, [cos, -sin, x0, sin, cos, y0, 0.0, 0.0])


def _shear_x(image, level):
    return _transform(image, [1.0, level * 0.3, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])


def _shear_y(image, level):
    return _transform(image, [1.0, 0.0, 0.0, level * 0.3, 1.0, 0.0, 0.0, 0.0])


def _translate_x(image, level):
    dx = level * 0.3 * tf.cast(tf.shape(image)[1], tf.float32)
    return _transform(image, [1.0, 0.0, dx, 0.0, 1.0, 0.0, 0.0, 0.0])


def _translate_y(image, level):
    dy = level * 0.3 * tf.cast(tf.shape(image)[0], tf.float32)
    return _transform(image, [1.0, 0.0, 0.0, 0.0, 1.0, dy, 0.0, 0.0])


def _auto_contrast(image, level):
    low = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(image, axis=[0, 1], keepdims=True)
    scale = tf.where(high > low, 255.0 / tf.maximum(high - low, 1e-3), 1.0)
    return tf.where(high > low, (image - low) * scale, image)


def _solarize(image, level):
    threshold = 256.0 - tf.abs(level) * 256.0
    return tf.where(image >= threshold, 255.0 - image, image)


def _posterize(image, level):
    bits = 8 - tf.cast(tf.round(tf.abs(level) * 4.0), tf.int32)
    shift = tf.cast(tf.pow(2.0, tf.cast(8 - bits, tf.float32)), tf.float32)
    return tf.floor(image / shift) * shift


def _color(image, level):
    return _blend(image, _gray(image), 1.0 + level * 0.9)


def _contrast(image, level):
    mean = tf.reduce_mean(_gray(image))
    return _blend(image, tf.fill(tf.shape(image), mean), 1.0 + level * 0.9)


def _brightness(image, level):
    return _blend(image, tf.zeros_like(image), 1.0 + level * 0.9)


def _sharpness(image, level):
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    channels = tf.shape(image)[-1]
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smooth = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "SAME")[0]
    return _blend(image, smooth, 1.0 + level * 0.9)


RAND_AUGMENT_OPS = (
    lambda x, m: x, _auto_contrast, _rotate, _solarize, _posterize, _color, _contrast, _brightness,
    _sharpness, _shear_x, _shear_y, _translate_x, _translate_y,
)


def rand_augment(image, seed, num_ops: int = 2, magnitude: float = 9.0):
    """RandAugment: ``num_ops`` ops drawn uniformly, each at ``magnitude`` / 10 with a random sign.

    Args:
        image: float32 ``(H, W, C)`` in [0, 255].
        seed: int32 ``(2,)`` stateless seed.
        num_ops: N of the paper (ops per image).
        magnitude: M of the paper, 0-10 (30 degrees rotation, 0.3 shear at 10).

    Returns:
        The augmented image, same shape, clipped to [0, 255].
    """
    for op_seed in _split(seed, num_ops):
        choice_seed, sign_seed = _split(op_seed, 2)
        index = tf.random.stateless_uniform((), choice_seed, 0, len(RAND_AUGMENT_OPS), dtype=tf.int32)
        sign = tf.where(tf.random.stateless_uniform((), sign_seed) < 0.5, -1.0, 1.0)
        level = sign * magnitude / 10.0
        branches = [lambda op=op: op(image, level) for op in RAND_AUGMENT_OPS]
        image = tf.ensure_shape(tf.switch_case(index, branches), image.shape)
        image = tf.clip_by_value(image, 0.0, 255.0)
    return image


# ----------------------------------------------------------------------------- batch mixing
def _beta(seed, alpha):
    a, b = _split(seed, 2)
    x = tf.random.stateless_gamma((), a, alpha)
    y = tf.random.stateless_gamma((), b, alpha)
    return x / (x + y)


def mixup_or_cutmix(images, labels, seed, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0):
    """Mixes each example with its mirror in the batch (Mixup or CutMix, one per batch).

    Args:
        images: float ``(B, H, W, C)``.
        labels: one-hot ``(B, num_classes)``.
        seed: int32 ``(2,)``.
        mixup_alpha / cutmix_alpha: Beta(alpha, alpha) parameters; 0 disables
            that method. With both on, each batch picks one at random.

    Returns:
        ``(images, labels)`` mixed; labels weighted by the mixed area.
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return images, labels
    choose_seed, lam_seed, box_seed = _split(seed, 3)
    other_images, other_labels = tf.reverse(images, [0]), tf.reverse(labels, [0])

    def mixup():
        lam = _beta(lam_seed, mixup_alpha)
        return lam * images + (1 - lam) * other_images, lam

    def cutmix():
        lam = _beta(lam_seed, cutmix_alpha)
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        cut = tf.sqrt(1.0 - lam)
        ch = tf.cast(tf.cast(h, tf.float32) * cut, tf.int32)
        cw = tf.cast(tf.cast(w, tf.float32) * cut, tf.int32)
        cy = tf.random.stateless_uniform((), box_seed, 0, h, dtype=tf.int32)
        cx = tf.random.stateless_uniform((), box_seed + 1, 0, w, dtype=tf.int32)
        y0, y1 = tf.maximum(cy - ch // 2, 0), tf.minimum(cy + ch // 2, h)
        x0, x1 = tf.maximum(cx - cw // 2, 0), tf.minimum(cx + cw // 2, w)
        rows = tf.logical_and(tf.range(h) >= y0, tf.range(h) < y1)
        cols = tf.logical_and(tf.range(w) >= x0, tf.range(w) < x1)
        box = tf.cast(tf.logical_and(rows[:, None], cols[None, :]), images.dtype)[None, :, :, None]
        area = tf.cast((y1 - y0) * (x1 - x0), tf.float32) / tf.cast(h * w, tf.float32)
        return images * (1 - box) + other_images * box, 1.0 - area

    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = tf.random.stateless_uniform((), choose_seed) < 0.5
        mixed, lam = tf.cond(use_cutmix, cutmix, mixup)
    else:
        mixed, lam = mixup() if mixup_alpha > 0 else cutmix()
    lam = tf.cast(lam, labels.dtype)
    return mixed, lam * labels + (1 - lam) * other_labels
