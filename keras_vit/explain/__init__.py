"""See inside a ViT: attention maps, rollout, attention distance, embeddings, and pictures of them.

The numbers (the ViT paper's Sec. 4.5) are in :mod:`~keras_vit.explain.attention`
and :mod:`~keras_vit.explain.embeddings`; :mod:`~keras_vit.explain.render` draws
them and :mod:`~keras_vit.explain.runs` draws training curves and the export
trade-off. Names are imported on first use, so the run plots never load TensorFlow.

Example:
    >>> import numpy as np, keras_vit
    >>> from keras_vit import explain
    >>> model = keras_vit.create_model("vit_test")
    >>> explain.attention_rollout(model, np.zeros((1, 32, 32, 3), np.uint8)).shape
    (1, 4, 4)
"""

import importlib

# public name: the submodule that defines it
_EXPORTS = {
    "attention_maps": "attention",
    "attention_rollout": "attention",
    "mean_attention_distance": "attention",
    "patch_grid": "attention",
    "position_embedding_similarity": "embeddings",
    "patch_embedding_components": "embeddings",
    "plot_attention": "render",
    "plot_mean_distance": "render",
    "plot_position_similarity": "render",
    "plot_patch_components": "render",
    "read_history": "runs",
    "plot_training_curves": "runs",
    "plot_export_tradeoff": "runs",
    "save_figure": "canvas",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_vit.explain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_vit.explain.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
