"""tf.data input pipelines: decode, resize, augment, normalize; seeded, sharded, parallel, prefetched.

Every pipeline yields model inputs normalized by the model's preprocessing
contract (:class:`keras_vit.preprocessing.Preprocessing`): ``(px / 255 - mean) / std``.

Training order is a pure function of ``(seed, epoch)``: each epoch draws one
permutation of all examples (the same on every worker), and worker ``k`` of
``W`` takes positions ``k, k + W, ...``, so across workers each example is seen
once per epoch. Augmentation draws from stateless RNGs seeded by
``(seed + epoch, example index)``. Starting at a global step skips file
indices (nothing is decoded twice), so a resumed run sees the same batches as
an uninterrupted one.

Example:
    >>> from keras_vit.preprocessing import Preprocessing
    >>> from keras_vit.training import data, sources
    >>> source = sources.load_source("digits", "train")
    >>> ds = data.train_dataset(source, Preprocessing(8, channels=1), batch_size=32,
    ...                         steps_per_epoch=10, seed=0)
    >>> images, labels = next(iter(ds))
    >>> images.shape, labels.shape
    (TensorShape([32, 8, 8, 1]), TensorShape([32, 10]))
"""

import tensorflow as tf

from keras_vit.training import augment as aug
from keras_vit.training.config import Augment
from keras_vit.training.sources import ArraySource, FileSource, TfdsSource

AUTOTUNE = tf.data.AUTOTUNE


def _load_fn(source, channels):
    """``(index) -> (uint8 image (H, W, C), label)`` for an indexed source."""
    labels = tf.constant(source.labels, tf.int64)
    if isinstance(source, ArraySource):
        images = tf.constant(source.images)
        if images.shape[-1] != channels:
            images = tf.image.grayscale_to_rgb(images) if channels == 3 else tf.image.rgb_to_grayscale(images)
        return lambda i: (tf.gather(images, i), tf.gather(labels, i))
    paths = tf.constant(source.paths)

    def load(i):
        return decode(tf.io.read_file(tf.gather(paths, i)), channels), tf.gather(labels, i)

    return load


def decode(raw, channels: int):
    """Encoded bytes -> uint8 ``(H, W, channels)``; grayscale/RGBA/palette images are converted.

    JPEGs use the accurate integer DCT, which matches Pillow (and so the
    on-device runtime) pixel for pixel; the default fast DCT differs by up to 4 levels.
    """
    return tf.cond(
        tf.io.is_jpeg(raw),
        lambda: tf.io.decode_jpeg(raw, channels=channels, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(raw, channels=channels, expand_animations=False, dtype=tf.uint8),
    )


def _resize(image, size, method):
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    image = tf.cond(same, lambda: image, lambda: tf.image.resize(image, size, method=method, antialias=True))
    return tf.ensure_shape(image, (size[0], size[1], None))


def _normalize(image, contract):
    mean = tf.constant(contract.mean, tf.float32)
    std = tf.constant(contract.std, tf.float32)
    return (image / 255.0 - mean) / std


def _train_map(contract, augment, num_classes):
    size = contract.image_size

    def fn(image, label, seed):
        image = tf.cast(image, tf.float32)
        crop_seed, flip_seed, ra_seed = aug._split(seed, 3)
        if augment.crop == "resized":
            image = aug.random_resized_crop(image, crop_seed, size)
        else:
            image = _resize(image, size, contract.interpolation)
            if augment.crop == "pad":
                image = aug.pad_and_crop(image, crop_seed, augment.padding)
        if augment.flip:
            image = aug.flip(image, flip_seed)
        if augment.rand_augment_ops:
            image = aug.rand_augment(image, ra_seed, augment.rand_augment_ops, augment.rand_augment_magnitude)
        image = tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), (size[0], size[1], contract.channels))
        return _normalize(image, contract), tf.one_hot(label, num_classes)

    return fn


def _epoch_elements(source, channels, epoch, seed, shuffle, num_pipelines, pipeline_id, take):
    """One epoch of ``(uint8 image, label, index)`` for this pipeline, ``take`` elements long."""
    if isinstance(source, TfdsSource):
        ds = source.as_dataset().enumerate().shard(num_pipelines, pipeline_id)
        if shuffle:
            # `epoch` is symbolic here (flat_map). With a global seed of 0 (keras.utils.set_random_seed(0))
            # TensorFlow's get_seed tests the symbolic op seed as a Python bool and fails; clearing the
            # seed of this function's graph only (not the global one) makes the order depend on the op
            # seed alone, the same whatever global seed the caller set.
            tf.random.set_seed(None)
            ds = ds.shuffle(min(source.num_examples, 20_000), seed=seed * 100_003 + epoch,
                            reshuffle_each_iteration=False)
        ds = ds.take(take)
        return ds.map(lambda i, pair: (_channels(pair[0], channels), pair[1], i), num_parallel_calls=AUTOTUNE)
    n = source.num_examples
    indices = tf.range(n, dtype=tf.int64)
    if shuffle:
        seed_pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
        indices = tf.random.experimental.stateless_shuffle(indices, seed=seed_pair)
    indices = indices[pipeline_id::num_pipelines][:take]
    load = _load_fn(source, channels)

    def with_index(i):
        image, label = load(i)
        return image, label, i

    return tf.data.Dataset.from_tensor_slices(indices).map(with_index, num_parallel_calls=AUTOTUNE)


def _channels(image, channels):
    if image.shape[-1] == channels:
        return image
    return tf.image.grayscale_to_rgb(image) if channels == 3 else tf.image.rgb_to_grayscale(image)


def train_dataset(
    source, contract, *, batch_size: int, steps_per_epoch: int, seed: int = 0,
    start_step: int = 0, augment: Augment = Augment(), input_context=None,
) -> tf.data.Dataset:
    """An endless, repeatable training stream of ``(images, one_hot_labels)`` batches.

    Args:
        source: from :func:`keras_vit.training.sources.load_source`.
        contract: the model's ``Preprocessing``.
        batch_size: examples per batch (the per-replica batch under a strategy).
        steps_per_epoch: global steps in an epoch; each epoch holds exactly
            ``steps_per_epoch * batch_size * replicas_per_pipeline`` examples here.
        seed: fixes the order and every augmentation.
        start_step: global step to start from (resuming skips indices, not decodes).
        augment: the augmentation switches.
        input_context: this pipeline's ``tf.distribute.InputContext`` (its shard, and the replicas it feeds:
            that many batches a step); None: one pipeline feeding one replica.

    Returns:
        ``tf.data.Dataset`` of float32 ``(batch, H, W, C)`` and ``(batch, len(source.class_names))``.
    """
    num_pipelines, pipeline_id, replicas_per_pipeline = 1, 0, 1
    if input_context is not None:
        num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        replicas_per_pipeline = input_context.num_replicas_in_sync // num_pipelines
    if source.num_examples < steps_per_epoch * batch_size * replicas_per_pipeline * num_pipelines:
        raise ValueError(
            f"steps_per_epoch={steps_per_epoch} x global batch "
            f"{batch_size * replicas_per_pipeline * num_pipelines} exceeds the {source.num_examples} examples."
        )
    per_step = batch_size * replicas_per_pipeline
    take = steps_per_epoch * per_step
    first_epoch, offset = divmod(start_step, steps_per_epoch)
    channels = contract.channels

    def epoch_ds(epoch):
        ds = _epoch_elements(source, channels, epoch, seed, True, num_pipelines, pipeline_id, take)
        return ds.map(lambda image, label, i: (image, label, i, epoch))

    ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch_ds).skip(offset * per_step)
    train_map = _train_map(contract, augment, len(source.class_names))  # the one-hot labels' width

    def mapped(image, label, index, epoch):
        example_seed = tf.stack([tf.cast(seed + epoch, tf.int32), tf.cast(index, tf.int32)])
        return train_map(image, label, example_seed)

    ds = ds.map(mapped, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)  # a file that passed listing but fails to decode is dropped
    ds = ds.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE, deterministic=True)
    if augment.mixup_alpha > 0 or augment.cutmix_alpha > 0:
        ds = ds.enumerate(start=start_step * replicas_per_pipeline)

        def mix(step, batch):
            batch_seed = tf.stack([tf.cast(seed, tf.int32) + 7919, tf.cast(step, tf.int32)])
            return aug.mixup_or_cutmix(*batch, batch_seed, augment.mixup_alpha, augment.cutmix_alpha)

        ds = ds.map(mix, num_parallel_calls=AUTOTUNE, deterministic=True)
    return _finish(ds)


def eval_dataset(
    source, contract, *, batch_size: int, global_batch_size=None, num_pipelines: int = 1, pipeline_id: int = 0,
) -> tf.data.Dataset:
    """Every example once, in order, as ``(images, labels, weights)`` batches.

    The index list is padded (weight 0) to a multiple of ``global_batch_size``
    so every replica gets full batches and the weighted sums stay exact.

    Returns:
        float32 images ``(batch, H, W, C)``, int64 labels ``(batch,)``, float32 weights ``(batch,)``.
    """
    global_batch_size = global_batch_size or batch_size
    channels, size = contract.channels, contract.image_size
    n = source.num_examples
    padded = -(-n // global_batch_size) * global_batch_size

    def prepare(image, label, weight):
        image = _resize(tf.cast(image, tf.float32), size, contract.interpolation)
        image = tf.ensure_shape(image, (size[0], size[1], channels))
        return _normalize(image, contract), label, weight

    if isinstance(source, TfdsSource):
        ds = source.as_dataset().map(lambda image, label: (_channels(image, channels), label, tf.constant(1.0)))
        if padded > n:
            pad = ds.take(1).map(lambda image, label, w: (image, label, tf.constant(0.0))).repeat(padded - n)
            ds = ds.concatenate(pad)
        ds = ds.shard(num_pipelines, pipeline_id)
    else:
        indices = tf.concat([tf.range(n, dtype=tf.int64), tf.zeros(padded - n, tf.int64)], 0)
        weights = tf.concat([tf.ones(n), tf.zeros(padded - n)], 0)
        load = _load_fn(source, channels)
        ds = tf.data.Dataset.from_tensor_slices((indices, weights)).shard(num_pipelines, pipeline_id)
        ds = ds.map(lambda i, w: (*load(i), w), num_parallel_calls=AUTOTUNE)
    ds = ds.map(prepare, num_parallel_calls=AUTOTUNE)
    ds = ds.ignore_errors(log_warning=True)
    return _finish(ds.batch(batch_size, num_parallel_calls=AUTOTUNE))


def _finish(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return ds.with_options(options).prefetch(AUTOTUNE)
