"""``keras-vit predict MODEL IMAGE [IMAGE ...]``: top-k labels for each image.

``MODEL`` is a ``.tflite`` file (run with LiteRT only: no TensorFlow is imported), a ``.keras`` file, or a
checkpoint name (``keras-vit models --pretrained``; fetched and cached), both run through Keras with the
model's own contract (size, mean, std, interpolation) and class names.
"""


def add_arguments(parser):
    parser.add_argument("model", help="a .tflite file (its .json contract beside it), a .keras file, or a "
                                      "checkpoint name such as vit_base_patch16_224.augreg2_in21k_ft_in1k")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--top-k", type=int, default=5, help="labels printed per image (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2, .tflite only)")


class _KerasClassifier:
    """``classify(path, top_k)`` like ``LiteRTModel``, for a Keras model that carries its contract."""

    def __init__(self, model):
        self.model = model

    def classify(self, image_path, top_k: int = 5) -> list:
        import numpy as np

        from keras_vit.images import load_image

        contract = self.model.preprocessing
        pixels = load_image(image_path, contract.image_size, contract.channels, contract.interpolation)
        logits = np.asarray(self.model(contract.normalize(pixels[None]), training=False))[0].astype("float64")
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        names = self.model.class_names or [str(i) for i in range(len(logits))]
        return [(names[i], float(probabilities[i])) for i in np.argsort(-probabilities)[:top_k]]


def _open(value, threads):
    if value.endswith(".tflite"):
        from keras_vit.tflite.runtime import LiteRTModel

        return LiteRTModel(value, num_threads=threads)
    from keras_vit.serialization import open_model

    return _KerasClassifier(open_model(value, what="the prediction"))


def run(args) -> int:
    import sys

    try:
        model = _open(args.model, args.threads)
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            ranked = model.classify(path, top_k=args.top_k)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        print(path)
        for label, probability in ranked:
            print(f"  {probability:7.2%}  {label}")
    return status
