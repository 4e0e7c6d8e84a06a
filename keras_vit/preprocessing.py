"""The preprocessing contract: how pixels become model inputs. NumPy only, no TensorFlow.

A model's inputs are ``(pixels / 255 - mean) / std`` per channel at the model's
image size, channels last. The default (mean = std = 0.5, inputs in [-1, 1]) is
the original ViT checkpoints' convention. The contract lives on the model
(``VisionTransformer(mean=..., std=..., interpolation=...)``, kept in its
``.keras`` file); ``Preprocessing.for_model(model)`` reads it, and every export
writes it beside the exported file so an app can preprocess without our code.
"""

import dataclasses
import json

import numpy as np

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")

@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Image size, channels, mean and std of a model's input.

    Example:
        >>> import numpy as np
        >>> p = Preprocessing(image_size=32)
        >>> float(p.normalize(np.full((32, 32, 3), 255, np.uint8)).max())
        1.0
    """

    image_size: tuple = (224, 224)
    channels: int = 3
    mean: tuple = 0.5  # a number or one per channel
    std: tuple = 0.5
    interpolation: str = "bilinear"

    def __post_init__(self):
        size = self.image_size
        if isinstance(size, int):
            object.__setattr__(self, "image_size", (size, size))
        object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
        for field in ("mean", "std"):
            value = tuple(float(v) for v in np.broadcast_to(getattr(self, field), (self.channels,)))
            object.__setattr__(self, field, value)
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive; received std={self.std}.")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}; received interpolation={self.interpolation!r}."
            )

    @classmethod
    def for_model(cls, model, **overrides):
        """The contract a model carries (a ``VisionTransformer``'s ``mean``, ``std`` and
        ``interpolation``); the default contract at the input shape of any other model."""
        height, width, channels = model.input_shape[1:]
        carried = {key: getattr(model, key) for key in ("mean", "std", "interpolation") if hasattr(model, key)}
        return cls(image_size=(height, width), channels=channels, **{**carried, **overrides})

    def normalize(self, pixels) -> np.ndarray:
        """uint8 (or 0-255 float) pixels ``(..., H, W, C)`` -> float32 model inputs."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.shape[-1] != self.channels:
            raise ValueError(
                f"Expected {self.channels} channels (last axis); received shape {pixels.shape}."
            )
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return (pixels / 255.0 - mean) / std

    def to_inputs(self, images, where: str = "images") -> np.ndarray:
        """Model inputs from uint8 pixels (normalized here) or float images (taken as already normalized).

        Accepts one image ``(H, W, C)`` or a batch ``(N, H, W, C)`` at this contract's size.

        Raises:
            ValueError: naming ``where``, the shape or dtype received and the one expected.
        """
        array = np.asarray(images)
        expected = tuple(self.image_size) + (self.channels,)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or tuple(array.shape[1:]) != expected:
            raise ValueError(
                f"{where} must hold images of shape (N, {', '.join(map(str, expected))}) for this model; "
                f"received shape {array.shape}. Resize them to {expected[0]}x{expected[1]} with "
                f"{expected[2]} channel(s)."
            )
        if array.dtype == np.uint8:
            return self.normalize(array)
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{where} must be uint8 pixels or float32 normalized images; received dtype {array.dtype}.")
        return array.astype(np.float32)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown preprocessing fields {unknown}; expected a subset of {sorted(known)}.")
        return cls(**data)


def check_class_names(names, count: int, where: str = "class_names", owner: str = "") -> list:
    """``names`` as a list of ``count`` strings, or a ValueError that says what was wrong and how to fix it."""
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        raise ValueError(f"{where} must be a list of class names; received {type(names).__name__} {names!r:.80}.")
    names = [str(name) for name in names]
    if len(names) != count:
        raise ValueError(f"{where} has {len(names)} names but {owner or f'the model has {count} outputs'}. "
                         f"Pass exactly {count} class names, in output order.")
    return names
