"""How close an exported model stays to the Keras model it came from: one comparison for every format.

NumPy only; the exported model is any ``images -> scores`` callable (a LiteRT runtime, an
onnxruntime session), so TFLite and ONNX are measured the same way. Like is compared with like: for
a file whose graph ends in softmax, the Keras logits pass through a softmax first, and the mode's
limit on ``relative_error`` then reads as a share of the top probability.

Example:
    >>> import numpy as np
    >>> keras_logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> metrics = compare_logits(keras_logits, keras_logits + 0.1)
    >>> round(metrics["max_abs_error"], 3), metrics["top1_agreement"]
    (0.1, 1.0)
"""

import numpy as np


def compare_logits(expected, actual, labels=None) -> dict:
    """Metrics of ``actual`` logits against ``expected`` (Keras) logits, both ``(N, classes)``.

    Returns:
        ``{"images", "max_abs_error", "mean_abs_error", "relative_error" (max abs error / max |expected|),
        "top1_agreement"}``, plus ``"keras_top1"`` and ``"export_top1"`` (accuracy) with ``labels``.
    """
    expected, actual = np.asarray(expected, np.float32), np.asarray(actual, np.float32)
    if expected.shape != actual.shape:
        raise ValueError(f"logits of shape {actual.shape} cannot be compared with Keras' {expected.shape}.")
    error = np.abs(actual - expected)
    scale = float(np.abs(expected).max()) or 1.0
    metrics = {
        "images": len(expected),
        "max_abs_error": float(error.max()),
        "mean_abs_error": float(error.mean()),
        "relative_error": float(error.max()) / scale,
        "top1_agreement": float(np.mean(actual.argmax(-1) == expected.argmax(-1))),
    }
    if labels is not None:
        labels = np.asarray(labels)
        metrics["keras_top1"] = float(np.mean(expected.argmax(-1) == labels))
        metrics["export_top1"] = float(np.mean(actual.argmax(-1) == labels))
    return metrics


def compare(model, predict, images, labels=None, outputs: str = "logits") -> dict:
    """Runs the Keras ``model`` and the export's ``predict`` on the same normalized float32 ``images``.

    Args:
        model: the Keras model.
        predict: the exported model as a callable, ``(N, H, W, C) float32 -> (N, classes)`` scores.
        images: normalized float32 images.
        labels: true class indices (optional).
        outputs: what ``predict`` returns, ``"logits"`` or ``"probabilities"`` (Keras' logits are
            then softmaxed).

    Returns:
        :func:`compare_logits`' metrics.
    """
    from keras_vit.tflite.runtime import softmax

    expected = model.predict(images, batch_size=64, verbose=0)
    if outputs == "probabilities":
        expected = softmax(np.asarray(expected, np.float32))
    return compare_logits(expected, predict(images), labels)
