"""One decorator that registers a class as serializable under ``keras_vit``."""

import keras

PACKAGE = "keras_vit"


def register(cls):
    """Registers ``cls`` so ``keras.models.load_model`` finds it as ``keras_vit>Name``."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
