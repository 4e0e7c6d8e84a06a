"""The preprocessing contract: how pixels become model inputs. NumPy only, no TensorFlow.

A model's inputs are ``(pixels / 255 - mean) / std`` per channel at the model's
image size, channels last. The default (mean = std = 0.5, inputs in [-1, 1]) is
the original ViT checkpoints' convention. The same contract travels with
exported models (``contract.to_json()``) so an app can preprocess without our code.
"""

import dataclasses
import json

import numpy as np


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

    @classmethod
    def for_model(cls, model, **overrides):
        """The default contract for a ``VisionTransformer``'s input shape."""
        height, width, channels = model.input_shape[1:]
        return cls(image_size=(height, width), channels=channels, **overrides)

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
