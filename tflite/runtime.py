"""``LiteRTModel``: run an exported ``.tflite`` with ai_edge_litert, NumPy and PIL only (no TensorFlow).

This is what runs on a Raspberry Pi or in a CI job without TensorFlow: it reads the model and its
JSON contract (or, without one, the TFLite metadata inside the file), preprocesses an image file per
the contract (size, mean, std, input scale and zero point; a file that normalizes in its graph is fed
0-255 pixels), runs it, and dequantizes the output (probabilities or logits, as the file says).

Example:
    >>> from keras_vit.tflite.runtime import LiteRTModel
    >>> model = LiteRTModel("vit_int8.tflite", num_threads=2)       # doctest: +SKIP
    >>> model.classify("cat.jpg", top_k=3)                          # doctest: +SKIP
    [('cat', 0.91), ('dog', 0.05), ('deer', 0.01)]
    >>> model.benchmark(runs=50)["p50_ms"]                          # doctest: +SKIP
    4.1
"""

import os
import time

import numpy as np

from keras_vit.preprocessing import Preprocessing
from keras_vit.tflite.contract import check_labels, contract_path, read_contract, sha256_of
from keras_vit.tflite.inspection import read_model_bytes


def quantize(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """float -> integer tensor values, ``round(x / scale) + zero_point`` clipped to the dtype."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """integer tensor values -> float32; float tensors pass through."""
    if not np.issubdtype(q.dtype, np.integer) or scale == 0:
        return q.astype(np.float32)
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def to_pixels(images: np.ndarray, preprocessing) -> np.ndarray:
    """Normalized float32 images -> the 0-255 float pixels they came from (``(x * std + mean) * 255``)."""
    mean, std = np.asarray(preprocessing.mean, np.float32), np.asarray(preprocessing.std, np.float32)
    return ((np.asarray(images, np.float32) * std + mean) * 255.0).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _ops_details(interpreter, path="the model") -> list:
    """The interpreter's node list; a damaged tensor name (not UTF-8) becomes a ValueError naming ``path``."""
    try:
        return interpreter._get_ops_details()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path!r} has a damaged tensor name ({error}); re-export it with `keras-vit export`.") from None


def ops_outside_delegate(interpreter, path="the model") -> dict:
    """Counts, by op name, of a loaded interpreter's ops that XNNPACK left to LiteRT's builtin kernels.

    The op profile that explains a slow integer graph: every such op splits the graph into one more
    XNNPACK partition and runs on a builtin kernel. The interpreter keeps the replaced nodes beside
    the DELEGATE nodes, so an op counts as outside when a tensor it writes is read by a DELEGATE node
    or is a model output without coming out of a DELEGATE node, or is read by an op outside.

    Args:
        interpreter: an ``ai_edge_litert.interpreter.Interpreter`` after ``allocate_tensors()``.

    Example:
        >>> ops_outside_delegate(interpreter)   # doctest: +SKIP
        {'RSQRT': 5, 'SOFTMAX': 2}
    """
    ops = _ops_details(interpreter, path)
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = {op["index"]: op for op in ops if op["op_name"] != "DELEGATE"}
    delegate_outputs = {int(t) for op in delegates for t in op["outputs"]}
    delegate_inputs = {int(t) for op in delegates for t in op["inputs"]}
    model_outputs = {int(detail["index"]) for detail in interpreter.get_output_details()}
    readers = {}
    for op in originals.values():
        for tensor in op["inputs"]:
            readers.setdefault(int(tensor), []).append(op["index"])

    def escapes(op, outside):
        return any(int(t) not in delegate_outputs and (
            int(t) in delegate_inputs or int(t) in model_outputs or any(r in outside for r in readers.get(int(t), ())))
            for t in op["outputs"])

    outside, changed = set(), True
    while changed:
        grown = {index for index, op in originals.items() if index not in outside and escapes(op, outside)}
        changed = bool(grown)
        outside |= grown
    counts = {}
    for index in sorted(outside):
        counts[originals[index]["op_name"]] = counts.get(originals[index]["op_name"], 0) + 1
    return dict(sorted(counts.items()))


def time_invoke(interpreter, runs: int, warmup: int) -> dict:
    """Milliseconds of ``interpreter.invoke()`` on whatever inputs are set: ``p50_ms, p90_ms, mean_ms, min_ms``.

    Example:
        >>> time_invoke(interpreter, runs=50, warmup=5)["p50_ms"]   # doctest: +SKIP
        0.34
    """
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    times = np.asarray(times)
    return {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "mean_ms": float(times.mean()), "min_ms": float(times.min())}


class LiteRTModel:
    """A ``.tflite`` classifier with its contract, run by the LiteRT interpreter.

    Args:
        path: the ``.tflite`` file; ``<stem>.json`` beside it supplies labels and preprocessing
            (without it: the file's TFLite metadata, else labels ``"0".."n-1"`` and the default
            contract for the input shape).
        num_threads: CPU threads for the interpreter (and XNNPACK).
        contract: an explicit contract path (default: beside the model).

    Raises:
        FileNotFoundError: missing model file.
        ValueError: a file that is not a TFLite model, a contract whose labels do not match the
            outputs or that belongs to another model file.
    """

    def __init__(self, path, num_threads: int = 2, contract=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = os.fspath(path)
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive integer; received num_threads={num_threads!r}.")
        self.num_threads = num_threads
        data = read_model_bytes(self.path)
        try:
            self.interpreter = Interpreter(model_content=data, num_threads=num_threads)
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
        except (ValueError, RuntimeError, IndexError) as error:  # a damaged tensor name fails to decode here
            raise ValueError(
                f"LiteRT cannot load {self.path!r}: {error}. The file is corrupt or uses ops this runtime lacks "
                f"(Flex ops need TensorFlow); re-export it with `keras-vit export`."
            ) from error
        num_outputs = int(self.output["shape"][-1])
        contract = contract or contract_path(self.path)
        self.contract = None
        if contract and os.path.isfile(contract):
            self.contract = read_contract(contract)
            recorded = self.contract.get("sha256")
            if recorded and recorded != sha256_of(self.path):
                raise ValueError(
                    f"Contract {contract!r} was written for a different model file than {self.path!r} "
                    f"(sha256 mismatch). Copy the .tflite and .json from the same export."
                )
            self.labels = check_labels(self.contract["labels"], num_outputs, where=f"labels in {contract!r}")
            try:
                self.preprocessing = Preprocessing.from_dict(self.contract["preprocessing"])
            except (TypeError, ValueError, OverflowError) as error:
                raise ValueError(f"Model contract {contract!r} has an invalid \"preprocessing\" field: {error} "
                                 f"Re-export the model.") from None
            p = self.preprocessing
            if (*p.image_size, p.channels) != tuple(int(s) for s in self.input["shape"][1:]):
                raise ValueError(f"Model contract {contract!r} describes {p.image_size} x {p.channels} inputs but "
                                 f"{self.path!r} takes {list(self.input['shape'])}. Copy the .tflite and .json "
                                 f"from the same export.")
        else:
            self._read_metadata(data, num_outputs)
        self.mode = self.contract["mode"] if self.contract else None
        # Older contracts: logits, normalized input.
        self.outputs = self.contract.get("outputs", "logits") if self.contract else self.outputs
        self.normalizes_in_graph = bool(self.contract and self.contract.get("normalization") == "in_graph")

    def _read_metadata(self, data, num_outputs):
        """Labels, mean/std and outputs from the file's metadata (mean 0 / std 1 for in-graph normalization:
        then ``normalize`` hands the graph the pixels themselves)."""
        from keras_vit.tflite.metadata import read_metadata

        height, width, channels = (int(s) for s in self.input["shape"][1:])
        metadata = read_metadata(data, where=self.path)
        metadata = metadata or {"labels": None, "mean": None, "std": None, "outputs": None}
        self.labels = check_labels(metadata["labels"], num_outputs, where=f"labels in {self.path!r}'s metadata")
        norm = {"mean": metadata["mean"], "std": metadata["std"]} if metadata["mean"] is not None else {}
        self.preprocessing = Preprocessing(image_size=(height, width), channels=channels, **norm)
        self.outputs = metadata["outputs"] or "logits"

    @property
    def input_shape(self) -> tuple:
        return tuple(int(s) for s in self.input["shape"])

    def delegate_partitions(self) -> int:
        """How many DELEGATE nodes (XNNPACK partitions) the interpreter built."""
        return sum(op["op_name"] == "DELEGATE" for op in _ops_details(self.interpreter, self.path))

    def ops_outside_delegate(self) -> dict:
        """Counts, by op name, of the ops XNNPACK left to LiteRT's builtin kernels (see :func:`ops_outside_delegate`).

        Example:
            >>> LiteRTModel("vit_float32.tflite").ops_outside_delegate()   # doctest: +SKIP
            {}
        """
        return ops_outside_delegate(self.interpreter, self.path)

    def _graph_input(self, images: np.ndarray) -> np.ndarray:
        """uint8 pixels or normalized floats -> what the graph takes (normalized, or pixels if it normalizes)."""
        if images.dtype == np.uint8:
            return images.astype(np.float32) if self.normalizes_in_graph else self.preprocessing.normalize(images)
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be uint8 pixels or normalized floats; received dtype {images.dtype}.")
        images = images.astype(np.float32)
        return to_pixels(images, self.preprocessing) if self.normalizes_in_graph else images

    def _run_one(self, image: np.ndarray) -> np.ndarray:
        scale, zero_point = self.input["quantization"]
        self.interpreter.set_tensor(self.input["index"], quantize(image[None], self.input["dtype"], scale, zero_point))
        try:
            self.interpreter.invoke()
        except RuntimeError as error:
            raise ValueError(f"LiteRT failed to run {self.path!r}: {error}. Re-export the model.") from error
        out = self.interpreter.get_tensor(self.output["index"])
        return dequantize(out, *self.output["quantization"])[0]

    def predict(self, images) -> np.ndarray:
        """The output (dequantized float32: probabilities or logits, see ``self.outputs``) for a batch.

        Args:
            images: uint8 pixels ``(N, H, W, C)`` (normalized here by the contract) or float32 images
                already normalized; a single image ``(H, W, C)`` is accepted too.

        Returns:
            float32 ``(N, num_classes)``.
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        expected = self.input_shape[1:]
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, expected))}); received {images.shape}.")
        return np.stack([self._run_one(image) for image in self._graph_input(images)])

    def classify(self, image_path, top_k: int = 5) -> list:
        """``[(label, probability), ...]`` for one image file, best first."""
        from keras_vit.images import load_image

        p = self.preprocessing
        pixels = load_image(image_path, p.image_size, p.channels, p.interpolation)
        scores = self.predict(pixels[None])[0]
        probabilities = scores if self.outputs == "probabilities" else softmax(scores)
        order = np.argsort(-probabilities)[: max(1, int(top_k))]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def benchmark(self, runs: int = 50, warmup: int = 5) -> dict:
        """Batch-1 latency of ``invoke()`` on a fixed input, like LiteRT's ``benchmark_model``.

        Returns:
            ``{"p50_ms", "p90_ms", "mean_ms", "min_ms", "runs", "warmup", "num_threads"}``.
        """
        if runs < 1 or warmup < 0:
            raise ValueError(f"runs must be >= 1 and warmup >= 0; received runs={runs}, warmup={warmup}.")
        rng = np.random.default_rng(0)
        image = self._graph_input(rng.integers(0, 256, self.input_shape[1:], dtype=np.uint8))
        scale, zero_point = self.input["quantization"]
        self.interpreter.set_tensor(self.input["index"], quantize(image[None], self.input["dtype"], scale, zero_point))
        return {**time_invoke(self.interpreter, runs, warmup), "runs": runs, "warmup": warmup,
                "num_threads": self.num_threads}
