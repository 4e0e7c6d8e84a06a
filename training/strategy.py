"""One function picks the tf.distribute strategy; one checks the batch split.

``auto`` picks, in order: TPU if a TPU cluster resolver finds one,
MultiWorkerMirroredStrategy if ``TF_CONFIG`` names more than one task,
MirroredStrategy over all local GPUs if there are two or more, else one device
(the GPU if there is one, else the CPU).
"""

import json
import logging
import os

log = logging.getLogger("keras_vit.training")

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def _tf_config_workers():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); received {os.environ['TF_CONFIG']!r}.") from None
    return sum(len(v) for k, v in cluster.items() if k in ("worker", "chief"))


def get_strategy(name: str = "auto", tpu: str = "", devices=None):
    """Returns a ``tf.distribute.Strategy``.

    Args:
        name: ``"auto"``, ``"one_device"``, ``"mirrored"`` (local GPUs, or
            ``devices``), ``"multi_worker"`` (``MultiWorkerMirroredStrategy``
            from ``TF_CONFIG``) or ``"tpu"`` (``TPUStrategy`` via
            ``TPUClusterResolver(tpu)``).
        tpu: the TPU name or address for the resolver ("" = local / from env).
        devices: explicit device list for ``mirrored`` (e.g. two logical CPUs).

    Returns:
        The strategy; create the model and optimizer under ``strategy.scope()``.

    Example:
        >>> strategy = get_strategy("one_device")
        >>> strategy.num_replicas_in_sync
        1
    """
    from keras_vit.backend import require_tensorflow

    require_tensorflow("tf.distribute training (keras_vit.training)")
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; received strategy={name!r}.")
    if name == "auto":
        name = _auto(tf, tpu)
        log.info("strategy=auto chose %s", name)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy='multi_worker' needs TF_CONFIG (cluster and task) in the environment; "
                "see https://www.tensorflow.org/guide/distributed_training#TF_CONFIG."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        if devices is None and not gpus:
            cpus = tf.config.list_logical_devices("CPU")
            devices = [d.name for d in cpus]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _auto(tf, tpu):
    if tpu or os.environ.get("TPU_NAME"):
        return "tpu"
    if _tf_config_workers() > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "one_device"


def split_batch(global_batch_size: int, strategy) -> int:
    """The per-replica batch; raises a clear error when replicas do not divide it."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size < 1 or global_batch_size % replicas:
        lower = max(global_batch_size // replicas, 1) * replicas
        raise ValueError(
            f"batch_size={global_batch_size} (global) is not divisible by the {replicas} replicas of "
            f"{type(strategy).__name__}. Use batch_size={lower} or {lower + replicas}."
        )
    return global_batch_size // replicas


def split_cpu(count: int = 2):
    """Splits the CPU into ``count`` logical devices (call before TensorFlow starts using it)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def multi_worker(strategy) -> bool:
    """True when the strategy spans several processes (a lost peer is then a possible failure)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return bool(resolver is not None and resolver.task_type and
                sum(len(v) for v in resolver.cluster_spec().as_dict().values()) > 1)


def is_chief(strategy) -> bool:
    """True on the worker that writes checkpoints and logs: the ``chief`` task, else worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
