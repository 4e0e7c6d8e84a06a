"""The one check for the parts of keras_vit that need Keras' TensorFlow backend.

The model (layers, ``create_model``, ``fit``, saving, the weight loaders, ``keras_vit.explain``)
runs on every Keras 3 backend: ``KERAS_BACKEND=tensorflow``, ``jax`` or ``torch``. Three parts are
TensorFlow programs and stay so: ``keras_vit.training`` (``tf.distribute`` and ``tf.data``), the
TFLite export and the ONNX export (both trace a ``tf.function``). On JAX, several devices train
through Keras' own distribution API instead::

    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model = keras_vit.create_model("B/16")   # variables created after this are replicated
    model.fit(...)                           # each batch is split over the devices

The LiteRT runtime (``keras_vit.tflite.runtime``) needs no Keras at all and runs anywhere.
"""

import keras


class TensorFlowOnlyError(ValueError):
    """A TensorFlow-only part was used under another Keras backend (a ``ValueError``: the CLI prints one line)."""


def require_tensorflow(what: str) -> None:
    """Raises :class:`TensorFlowOnlyError` unless Keras runs on TensorFlow.

    Args:
        what: the part being used, e.g. ``"TFLite and ONNX export"``.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise TensorFlowOnlyError(
            f"{what} needs Keras' TensorFlow backend; Keras here runs on {backend!r}. Run it with "
            f"KERAS_BACKEND=tensorflow (TensorFlow installed). The model itself trains, saves and reloads on "
            f"{backend}; for several devices there use keras.distribution.DataParallel (README, 'Backends and GPUs')."
        )


def accelerator() -> tuple:
    """``(platform, compute_capability)`` of the first device Keras' backend computes on.

    ``platform`` is ``"cpu"``, ``"gpu"`` or ``"tpu"``; ``compute_capability`` is the CUDA
    capability as a float (``9.0`` for an H100 / H200) or ``None`` where there is none.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # only the active backend's library

        device = jax.devices()[0]
        platform = "gpu" if device.platform in ("gpu", "cuda", "rocm") else device.platform
        capability = getattr(device, "compute_capability", None)
        return platform, float(capability) if capability else None
    if backend == "torch":
        import torch  # only the active backend's library

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return "gpu", major + minor / 10
        return "cpu", None
    import tensorflow as tf  # only the active backend's library

    if tf.config.list_logical_devices("TPU"):
        return "tpu", None
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        return "gpu", capability[0] + capability[1] / 10 if capability else None
    return "cpu", None


def mixed_policy() -> str:
    """The mixed-precision dtype policy for this device: ``"mixed_bfloat16"`` or ``"mixed_float16"``.

    bfloat16 has float32's range, so it trains without loss scaling: TPUs, CPUs and GPUs from
    Ampere on (compute capability 8.0: A100, H100, H200, RTX 30xx) take it. Older GPUs have no
    fast bfloat16 and take float16, which Keras' ``compile`` then wraps in a ``LossScaleOptimizer``.
    In both, our LayerNorm statistics and the attention softmax are computed in float32.
    """
    platform, capability = accelerator()
    if platform == "gpu" and (capability is None or capability < 8.0):
        return "mixed_float16"
    return "mixed_bfloat16"
