"""``self_check``: does XNNPACK on this CPU compute what LiteRT's reference kernels compute?

XNNPACK picks its kernels by CPU when it starts (int8 dot-product paths on ARMv8.2, others without), so a
file verified on the build machine can still compute differently on a device. LiteRT's builtin reference
kernels (``OpResolverType.BUILTIN_REF``, no delegate) are portable C++ that give the same numbers on x86 and
aarch64. The self-check runs both on a few images and holds XNNPACK to the export mode's own limits
(:mod:`keras_vit.tflite.modes`: the relative error and top-1 agreement the export was held to against Keras),
taking the reference kernels' logits as the truth. Needs ai_edge_litert, NumPy and PIL only.

Measured (tests/test_aarch64.py, emulated aarch64): on a Raspberry Pi 5's or Pi 4's cores XNNPACK's int8
agrees with the reference; on qemu's ``max`` CPU (SVE, SME, i8mm) its int8 logits are off by more than
their own range, and this check says so.

Example:
    >>> result = self_check("vit_int8.tflite")          # doctest: +SKIP
    >>> print(result.summary()); result.ok              # doctest: +SKIP
"""

import dataclasses

import numpy as np

from keras_vit.tflite.modes import get_mode
from keras_vit.tflite.runtime import LiteRTModel

IMAGES = 8  # few: the reference kernels are slow (unthreaded int8 matrix products)


@dataclasses.dataclass
class SelfCheck:
    """XNNPACK against the reference kernels on ``images`` images; ``ok`` when within the mode's limits."""

    path: str
    mode: str
    images: int
    delegate_partitions: int
    max_relative_error: float
    top1_agreement: float
    limit_relative_error: float
    limit_top1_agreement: float

    @property
    def ok(self) -> bool:
        return (self.max_relative_error <= self.limit_relative_error
                and self.top1_agreement >= self.limit_top1_agreement)

    def summary(self) -> str:
        lines = [
            f"self-check {self.path} ({self.mode}) on {self.images} images: XNNPACK "
            f"({self.delegate_partitions} partition{'' if self.delegate_partitions == 1 else 's'}) "
            f"against LiteRT's reference kernels",
            f"  max relative error {self.max_relative_error:.4g} (limit {self.limit_relative_error:g}), "
            f"top-1 agreement {self.top1_agreement:.0%} (limit {self.limit_top1_agreement:.0%})",
        ]
        if self.delegate_partitions == 0:
            lines.append("OK: XNNPACK runs no op of this file here; the reference kernels compute everything.")
        elif self.ok:
            lines.append("OK: XNNPACK agrees with the reference kernels on this CPU.")
        else:
            lines.append(
                "DISAGREE: on this CPU XNNPACK's results differ from LiteRT's reference kernels beyond the "
                f"{self.mode} limits, so this file's predictions here are not the ones verified at export. "
                "Use a float32 export on this device and report the CPU (/proc/cpuinfo) with this output."
            )
        return "\n".join(lines)


def reference_model(path, num_threads: int = 1) -> LiteRTModel:
    """A :class:`LiteRTModel` of ``path`` on LiteRT's builtin reference kernels, without XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model = LiteRTModel(path, num_threads=num_threads)
    model.interpreter = Interpreter(model_path=model.path, num_threads=num_threads,
                                    experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    model.interpreter.allocate_tensors()  # same file, same tensor indices: model.input/output stay valid
    return model


def synthetic_images(shape, count: int = IMAGES, seed: int = 0) -> np.ndarray:
    """uint8 ``(count, H, W, C)``: smooth colour gradients with noise, for a check without image files."""
    height, width, channels = shape
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    images = []
    for _ in range(count):
        a, b, c = rng.uniform(-1, 1, (3, channels))
        base = 127.5 + 100 * np.tanh(a * x[..., None] + b * y[..., None] + c)
        images.append(np.clip(base + rng.normal(0, 20, (height, width, channels)), 0, 255))
    return np.stack(images).astype(np.uint8)


def self_check(path, images=None, num_threads: int = 2) -> SelfCheck:
    """Compares XNNPACK (LiteRT's default) with the builtin reference kernels on ``images``.

    Args:
        path: the ``.tflite`` file (its contract beside it gives the mode and preprocessing).
        images: uint8 ``(N, H, W, C)`` at the model's input size; default :func:`synthetic_images`.
        num_threads: XNNPACK's threads (the reference kernels run on one).

    Returns:
        a :class:`SelfCheck`; the limits are the contract's mode's, else ``int8``'s for an integer input
        and ``dynamic``'s (the loosest float-input mode) for a float one.
    """
    fast = LiteRTModel(path, num_threads=num_threads)
    images = synthetic_images(fast.input_shape[1:]) if images is None else np.asarray(images)
    mode = fast.mode or ("int8" if np.issubdtype(fast.input["dtype"], np.integer) else "dynamic")
    limits = get_mode(mode)
    got = fast.predict(images)
    want = reference_model(path).predict(images)
    return SelfCheck(
        path=fast.path, mode=mode, images=len(images), delegate_partitions=fast.delegate_partitions(),
        max_relative_error=float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12)),
        top1_agreement=float((got.argmax(-1) == want.argmax(-1)).mean()),
        limit_relative_error=limits.max_relative_error, limit_top1_agreement=limits.min_top1_agreement,
    )


def run(args) -> int:
    """``keras-vit verify MODEL.tflite --self-check [--images FOLDER]``: prints the check; 1 on disagreement."""
    import sys

    images = None
    try:
        if args.images:
            from keras_vit.images import read_image_folder

            p = LiteRTModel(args.tflite, num_threads=args.threads).preprocessing
            images = read_image_folder(args.images, p.image_size, p.channels, limit=IMAGES, seed=1)[0]
        result = self_check(args.tflite, images, num_threads=args.threads)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0 if result.ok else 1
