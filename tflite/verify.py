"""``verify_tflite``: inspect an exported ``.tflite`` and compare it with the Keras model on real images.

Checks, each a row of the report table:

* the file parses and has builtin ops only (no Flex / custom ops);
* no dynamic shapes (batch-1 fixed signature);
* integer modes: no float op inside (QUANTIZE / DEQUANTIZE only at the input or output);
* the contract beside it matches (labels count, sha256), and so does the TFLite metadata inside it;
* with a Keras model and images: max abs / relative error of the outputs (probabilities against
  Keras' softmax, logits against its logits) and top-1 agreement,
  against the mode's thresholds (:mod:`keras_vit.tflite.modes`); with true labels, accuracy of both.

The number of XNNPACK ``DELEGATE`` partitions is reported (one is ideal: every op in XNNPACK), with
the ops XNNPACK left to LiteRT's builtin kernels (the reason for each extra partition). A mode made
for a downstream compiler (``edgetpu``) adds that compiler's predicted op placement
(:mod:`keras_vit.tflite.edgetpu`).

Example:
    >>> report = verify_tflite("vit_int8.tflite", model=keras_model, images=pixels)   # doctest: +SKIP
    >>> print(report.table()); report.ok                                               # doctest: +SKIP
"""

import dataclasses
import os

from keras_vit.tflite.inspection import inspect_file
from keras_vit.tflite.modes import MODES, get_mode
from keras_vit.tflite.parity import compare


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclasses.dataclass
class VerifyReport:
    """The verifier's findings. ``ok`` is True when every check passed."""

    path: str
    mode: str
    size_bytes: int
    op_counts: dict
    op_versions: dict
    input: tuple
    output: tuple
    delegate_partitions: int
    checks: list
    metrics: dict
    outside_delegate: dict = dataclasses.field(default_factory=dict)
    target_report: str = ""  # the mode's downstream compiler (Edge TPU): its predicted placement

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def failures(self) -> list:
        return [check for check in self.checks if not check.ok]

    def table(self) -> str:
        """A plain-text report: the file, its ops, then one line per check."""
        lines = [
            f"file       {self.path} ({self.size_bytes / 1024:.1f} KiB, mode {self.mode})",
            f"input      {self.input[0]} {self.input[1]} {self.input[2]}",
            f"output     {self.output[0]} {self.output[1]} {self.output[2]}",
            f"XNNPACK    {self.delegate_partitions} DELEGATE partition(s); ops left to builtin kernels: "
            + (", ".join(f"{name} x{count}" for name, count in self.outside_delegate.items()) or "none"),
            "ops        " + ", ".join(f"{name} x{count} (v{self.op_versions[name]})"
                                      for name, count in sorted(self.op_counts.items())),
        ]
        for i, line in enumerate(self.target_report.splitlines()):
            lines.append(f"{'target' if i == 0 else '':<10} {line}")
        for key, value in self.metrics.items():
            lines.append(f"{key:<10} {value:.6g}" if isinstance(value, float) else f"{key:<10} {value}")
        width = max(len(check.name) for check in self.checks) if self.checks else 0
        lines += [f"[{'PASS' if c.ok else 'FAIL'}] {c.name:<{width}}  {c.detail}" for c in self.checks]
        lines.append(f"verdict    {'OK' if self.ok else 'FAILED'}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


def _infer_mode(info) -> str:
    input_type = info.inputs[0][1]
    counts = info.op_counts()
    if input_type in ("INT8", "UINT8"):
        return "uint8" if input_type == "UINT8" else "int8"
    if input_type == "INT16" or (not info.float_ops() and counts.get("QUANTIZE")):
        return "int16x8"
    if counts.get("DEQUANTIZE") and not info.float_ops() == []:
        return "float16" if any("FLOAT16" in op.input_types for op in info.operators) else "dynamic"
    return "float32"


def _images(images, preprocessing):
    if images is None:
        return None
    if isinstance(images, (str, os.PathLike)):
        from keras_vit.images import read_image_folder

        images, _, _ = read_image_folder(images, preprocessing.image_size, preprocessing.channels, limit=200)
    return preprocessing.to_inputs(images, "verification images")


def _edgetpu_report(path) -> str:
    from keras_vit.tflite.edgetpu import edgetpu_report, format_report

    return "Edge TPU compiler, predicted from its published op table:\n" + format_report(edgetpu_report(path))


TARGET_REPORTS = {"edgetpu": _edgetpu_report}  # Mode.target -> the report printed with the checks


def _metadata_check(path, runtime) -> Check:
    """The TFLite metadata apps read agrees with the contract (labels, outputs, normalization)."""
    from keras_vit.tflite.metadata import read_metadata

    metadata = read_metadata(path)
    if metadata is None:
        return Check("metadata", False, "no TFLite metadata (MediaPipe refuses the file); re-export it")
    expected_mean = (0.0,) * len(metadata["mean"] or ()) if runtime.normalizes_in_graph else runtime.preprocessing.mean
    problems = [name for name, ok in (
        ("labels", metadata["labels"] == runtime.labels), ("outputs", metadata["outputs"] == runtime.outputs),
        ("mean", metadata["mean"] is not None and all(abs(a - b) < 1e-5 for a, b in zip(metadata["mean"],
                                                                                       expected_mean))),
    ) if not ok]
    where = "in the graph" if runtime.normalizes_in_graph else "by the caller"
    return Check("metadata", not problems,
                 f"labels, {metadata['outputs']}, normalization {where}; as the contract says" if not problems
                 else f"metadata disagrees with the contract on {', '.join(problems)}")


def _parity_checks(metrics, mode, outputs):
    return [
        Check(f"{outputs} close to Keras", metrics["relative_error"] <= mode.max_relative_error,
              f"max |tflite - keras| = {metrics['max_abs_error']:.3g} = {metrics['relative_error']:.3g} of "
              f"max|{'probability' if outputs == 'probabilities' else 'logit'}| "
              f"(limit {mode.max_relative_error:g})"),
        Check("top-1 agrees with Keras", metrics["top1_agreement"] >= mode.min_top1_agreement,
              f"{metrics['top1_agreement']:.1%} of {metrics['images']} images (limit {mode.min_top1_agreement:.0%})"),
    ]


def verify_tflite(path, model=None, images=None, labels=None, *, mode=None, num_threads: int = 2) -> VerifyReport:
    """Inspects ``path`` and, given ``model`` and ``images``, compares it with Keras.

    Args:
        path: the ``.tflite`` file.
        model: the Keras model it was exported from (optional).
        images: real held-out images: uint8 pixels ``(N, H, W, C)``, normalized float32, or a folder.
        labels: true class indices of ``images`` (optional; adds both models' accuracy).
        mode: the export mode whose thresholds apply (default: from the contract, else inferred).
        num_threads: interpreter threads.

    Returns:
        a :class:`VerifyReport`; ``report.ok`` and ``print(report.table())``.

    Raises:
        FileNotFoundError / ValueError: for a missing, corrupt or non-TFLite file.
    """
    from keras_vit.tflite.runtime import LiteRTModel

    info = inspect_file(path)
    checks = []
    flex = info.flex_ops() + info.custom_ops()
    checks.append(Check("builtin ops only", not flex, "no Flex or custom op" if not flex else f"found {flex}"))
    if flex:  # the interpreter cannot load such a file: report what the flatbuffer says and stop
        return VerifyReport(os.fspath(path), mode or "?", info.size_bytes, dict(info.op_counts()),
                            info.op_versions(), info.inputs[0], info.outputs[0], 0, checks, {})
    runtime = LiteRTModel(path, num_threads=num_threads)
    mode = get_mode(mode or runtime.mode or _infer_mode(info))
    checks.append(Check("static shapes", not info.has_dynamic_shapes,
                        "all tensor shapes fixed" if not info.has_dynamic_shapes else "a tensor has a -1 dimension"))
    if mode.integer_only:
        floats, misplaced = info.float_ops(), info.misplaced_edge_ops()
        checks.append(Check("integer ops only", not floats and not misplaced,
                            "no float op inside; QUANTIZE/DEQUANTIZE only at the edges" if not floats and not misplaced
                            else f"float ops {sorted(set(floats))}, inner (de)quantize {misplaced}"))
        checks.append(Check("io dtype", info.inputs[0][1] == mode.io_dtype.upper() or mode.io_dtype == "float32",
                            f"input {info.inputs[0][1]}, expected {mode.io_dtype}"))
    checks.append(Check("contract", runtime.contract is not None,
                        "labels and preprocessing JSON beside the model" if runtime.contract
                        else "no <stem>.json beside the model (labels/preprocessing unknown)"))
    checks.append(_metadata_check(path, runtime))
    metrics = {}
    normalized = _images(images, runtime.preprocessing)
    if model is not None and normalized is not None:
        metrics = compare(model, runtime.predict, normalized, labels, outputs=runtime.outputs)
        checks += _parity_checks(metrics, mode, runtime.outputs)
    target_report = TARGET_REPORTS[mode.target](path) if mode.target else ""
    return VerifyReport(os.fspath(path), mode.name, info.size_bytes, dict(info.op_counts()), info.op_versions(),
                        tuple(info.inputs[0]), tuple(info.outputs[0]), runtime.delegate_partitions(), checks, metrics,
                        runtime.ops_outside_delegate(), target_report)


__all__ = ["MODES", "VerifyReport", "verify_tflite"]
