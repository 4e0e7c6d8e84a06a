"""What is inside a ``.tflite`` file: ops (with versions), tensor dtypes, Flex ops, dynamic shapes.

Reads the flatbuffer with ``ai_edge_litert``'s schema (no TensorFlow), so a file with Flex ops -
which the interpreter refuses to load - is still described, op by op.

Example:
    >>> info = inspect_file("model.tflite")            # doctest: +SKIP
    >>> info.op_counts()["FULLY_CONNECTED"]            # doctest: +SKIP
    10
"""

import collections
import dataclasses
import os

# Ops that only convert between float and integer: allowed at the edges of an integer model.
EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")
FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64")


class NotTFLiteError(ValueError):
    """The file is not a TFLite flatbuffer (or is truncated / corrupt)."""


@dataclasses.dataclass
class Operator:
    """One op of the main subgraph: its name, version, and input/output tensor dtypes."""

    index: int
    name: str
    version: int
    input_types: list
    output_types: list
    inputs: list
    outputs: list


@dataclasses.dataclass
class FileInfo:
    """The parts of a ``.tflite`` file that the verifier checks."""

    path: str
    size_bytes: int
    operators: list
    inputs: list  # [(name, dtype, shape_signature)]
    outputs: list
    has_dynamic_shapes: bool

    def op_counts(self) -> collections.Counter:
        return collections.Counter(op.name for op in self.operators)

    def op_versions(self) -> dict:
        """``{op name: highest version used}``."""
        versions = {}
        for op in self.operators:
            versions[op.name] = max(versions.get(op.name, 0), op.version)
        return versions

    def flex_ops(self) -> list:
        return sorted({op.name for op in self.operators if op.name.startswith("Flex")})

    def custom_ops(self) -> list:
        return sorted({op.name for op in self.operators if op.name.startswith("CUSTOM:")})

    def float_ops(self) -> list:
        """Ops computing in float (a float tensor in or out), other than QUANTIZE/DEQUANTIZE."""
        found = []
        for op in self.operators:
            if op.name in EDGE_OPS:
                continue
            if any(t in FLOAT_TYPES for t in op.input_types + op.output_types):
                found.append(op.name)
        return found

    def misplaced_edge_ops(self) -> list:
        """Float <-> integer QUANTIZE/DEQUANTIZE inside the graph (not on a model input or output).

        Integer-to-integer QUANTIZE (a requantization) is an integer op and allowed anywhere.
        """
        found = []
        for op in self.operators:
            if op.name == "QUANTIZE" and any(t in FLOAT_TYPES for t in op.input_types):
                if not set(op.inputs) & set(self._input_ids):
                    found.append(f"QUANTIZE#{op.index}")
            elif op.name == "DEQUANTIZE" and any(t in FLOAT_TYPES for t in op.output_types):
                if not set(op.outputs) & set(self._output_ids):
                    found.append(f"DEQUANTIZE#{op.index}")
        return found


def _enum_names(enum_class) -> dict:
    return {value: name for name, value in vars(enum_class).items() if not name.startswith("_")}


def read_model_bytes(path) -> bytes:
    """Reads ``path`` and checks the TFLite file identifier ``TFL3``.

    Raises:
        FileNotFoundError: when the file does not exist.
        NotTFLiteError: when it is empty, truncated or not a TFLite flatbuffer.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path!r}. Pass the path of a .tflite file.")
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise NotTFLiteError(
            f"{path!r} is not a TFLite model ({len(data)} bytes, no 'TFL3' identifier). "
            f"Pass a .tflite file written by `keras-vit export`; an ONNX or .keras file needs its own runtime."
        )
    return data


def inspect_bytes(data: bytes, path: str = "<bytes>") -> FileInfo:
    """Parses a TFLite flatbuffer into a :class:`FileInfo`."""
    from ai_edge_litert import schema_py_generated as schema

    builtin_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = (code.CustomCode() or b"").decode()
                name = custom if custom.startswith("Flex") else "CUSTOM:" + custom
            else:
                name = builtin_names.get(builtin, f"BUILTIN_{builtin}")
            codes.append((name, code.Version()))
        graph = model.Subgraphs(0)
        tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
        types = [type_names.get(t.Type(), str(t.Type())) for t in tensors]
        operators = []
        for j in range(graph.OperatorsLength()):
            op = graph.Operators(j)
            name, version = codes[op.OpcodeIndex()]
            ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
            operators.append(Operator(j, name, version, [types[i] for i in ins if i >= 0],
                                      [types[i] for i in outs], ins, outs))

        def describe(index):
            tensor = tensors[index]
            signature = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()
            return (tensor.Name().decode(), types[index], [int(s) for s in signature])

        input_ids = [int(i) for i in graph.InputsAsNumpy()]
        output_ids = [int(i) for i in graph.OutputsAsNumpy()]
        inputs, outputs = [describe(i) for i in input_ids], [describe(i) for i in output_ids]
        dynamic = any(-1 in tensor.ShapeSignatureAsNumpy() for tensor in tensors if tensor.ShapeSignatureLength())
    except Exception as error:  # a corrupt flatbuffer raises anything from struct.error to IndexError
        raise NotTFLiteError(f"{path!r} has a TFLite header but cannot be parsed ({error!r}); re-export it.") from error
    info = FileInfo(path, len(data), operators, inputs, outputs, dynamic)
    info._input_ids, info._output_ids = input_ids, output_ids
    return info


def inspect_file(path) -> FileInfo:
    """Reads and parses ``path`` (see :func:`read_model_bytes`)."""
    return inspect_bytes(read_model_bytes(path), os.fspath(path))
