"""All-or-nothing assignment of converted weights to a model, and the report of what happened.

Every shape is checked and every array cast before the first variable is
written, so a failed load leaves the model exactly as it was.
"""

import dataclasses

import numpy as np


class WeightMismatchError(ValueError):
    """The checkpoint does not fit the model; lists every mismatched shape, missing and unexpected weight."""

    def __init__(self, message, mismatches=(), missing=(), unexpected=()):
        super().__init__(message)
        self.mismatches = list(mismatches)
        self.missing = list(missing)
        self.unexpected = list(unexpected)


@dataclasses.dataclass
class LoadReport:
    """What ``load_weights`` did.

    Attributes:
        path, source: the checkpoint and the converter used (``"npz"``, ``"timm"``, ``"huggingface"``).
        loaded: our weight paths that were assigned.
        missing: model weights the checkpoint did not provide (kept as they were).
        unexpected: checkpoint keys that map to nothing in the model.
        ignored: checkpoint keys documented as outside the classifier (e.g. Hugging Face's pooler).
        skipped: checkpoint weights left out on purpose (``skip_head=True``).
        resampled: ``(old_grid, new_grid)`` when position embeddings were interpolated.
        preprocessing: the checkpoint's input contract (``keras_vit.preprocessing.Preprocessing``).
    """

    path: str
    source: str
    loaded: list
    missing: list
    unexpected: list
    ignored: list
    skipped: list
    resampled: object = None
    preprocessing: object = None

    def summary(self) -> str:
        text = f"Loaded {len(self.loaded)} weights from {self.path} ({self.source})"
        for name in ("missing", "unexpected", "ignored", "skipped"):
            items = getattr(self, name)
            if items:
                text += f"; {len(items)} {name}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
        if self.resampled:
            text += f"; position embeddings resampled {self.resampled[0]} -> {self.resampled[1]}"
        return text + "."


def _lines(title, items, fmt):
    if not items:
        return []
    shown = [fmt(item) for item in items[:30]]
    more = [f"  ... and {len(items) - 30} more"] if len(items) > 30 else []
    return [f"{title} ({len(items)}):"] + [f"  {s}" for s in shown] + more


def assign_weights(model, weights: dict, *, allow_missing=(), strict: bool = True, extra_mismatches=(),
                   unexpected_keys=(), what=""):
    """Assigns ``weights`` (our path -> array) to ``model`` only if all of them fit.

    Args:
        model: a built Keras model.
        weights: our weight path -> array.
        allow_missing: model weight paths that may stay as they are (e.g. a skipped head).
        strict: when True, missing model weights and unexpected checkpoint weights are errors.
        extra_mismatches: ``(name, checkpoint, model)`` facts found by the caller (e.g. num_heads).
        unexpected_keys: checkpoint keys the converter could not map (counted as unexpected).
        what: the checkpoint's description, for messages.

    Returns:
        ``(loaded, missing, unexpected)`` lists of weight paths.

    Raises:
        WeightMismatchError: any shape mismatch, or (strict) missing / unexpected weights; nothing is assigned.
    """
    variables = {v.path: v for v in model.weights}
    mismatches = list(extra_mismatches)
    mismatches += [(k, tuple(np.shape(weights[k])), tuple(v.shape)) for k, v in variables.items()
                   if k in weights and tuple(np.shape(weights[k])) != tuple(v.shape)]  # in model order
    unexpected = sorted(list(unexpected_keys) + [k for k in weights if k not in variables])
    missing = sorted(p for p in variables if p not in weights and p not in set(allow_missing))
    if mismatches or (strict and (missing or unexpected)):
        lines = [f"The checkpoint {what} does not fit model {model.name!r}; no weight was changed."]
        lines += _lines("Mismatched shapes (checkpoint vs model)", mismatches, lambda m: f"{m[0]}: {m[1]} vs {m[2]}")
        lines += _lines("Missing from the checkpoint", missing, str)
        lines += _lines("In the checkpoint but not in the model", unexpected, str)
        lines.append("Build the model the checkpoint was trained as (keras_vit.create_model(name, **overrides)); "
                     "pass skip_head=True to keep a new head, or strict=False to accept missing/unexpected weights.")
        raise WeightMismatchError("\n".join(lines), mismatches, missing, unexpected)
    arrays = {k: np.asarray(w, dtype=variables[k].dtype) for k, w in weights.items() if k in variables}
    for key, value in arrays.items():
        variables[key].assign(value)
    return sorted(arrays), missing, unexpected
