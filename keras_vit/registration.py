"""The decorator that names a keras_vit class for ``keras.saving``: the leaf every layer imports.

It imports Keras and nothing of keras_vit, so the layers, the model and the
loaders all stand on it without standing on each other.
"""

import keras

PACKAGE = "keras_vit"


def register(cls):
    """Registers ``cls`` so ``keras.models.load_model`` finds it as ``keras_vit>Name``.

    Example:
        >>> import keras
        >>> @register
        ... class Twice(keras.layers.Layer):
        ...     def call(self, x):
        ...         return 2 * x
        >>> keras.saving.get_registered_name(Twice)
        'keras_vit>Twice'
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
