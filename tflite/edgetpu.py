"""Coral Edge TPU: which ops of an exported model the Edge TPU compiler would map, and where it stops.

There is no ``edgetpu_compiler`` here (it is an x86-64 Debian package outside PyPI), so this
module applies the compiler's published rules to our ``.tflite``'s op list:

* Source A - Coral, "TensorFlow models on the Edge TPU" (coral.ai/docs/edgetpu/models-intro),
  requirements: tensors fully 8-bit quantized; tensor sizes constant at compile time; model
  parameters (e.g. bias) constant at compile time; tensors 1-, 2- or 3-dimensional - "if a tensor
  has more than 3 dimensions, then only the 3 innermost dimensions may have a size greater than 1";
  only the ops of its table. Rows retrieved for this module (limitations quoted in short):
  Logistic, Relu, Relu6, ReluN1To1, Tanh, Add, Maximum, Minimum, Mul, Sub; AveragePool2d and
  MaxPool2d (no fused activation); Concatenation (no fused activation; constant inputs only as
  zero padding); Conv2d; DepthwiseConv2d; FullyConnected ("only default format supported for
  fully-connected weights; output tensor is one-dimensional"); L2Normalization; Mean ("reduction
  along x- and/or y-dimensions only"); Pad; Reshape; ResizeBilinear; ResizeNearestNeighbor.
* Source B - Axis, ARTPEC-7 (Edge TPU) supported-ops page (developer.axis.com, .../artpec-7/
  supported-ops): also ExpandDims, LSTM, Pack, PReLU, Quantize, ReduceMax, ReduceMin; Mean "no
  reduction in batch dimension; if a z-reduction, the z-dimension must be multiple of 4".
* Source C - Coral, "Edge TPU Compiler" (coral.ai/docs/edgetpu/compiler): ``edgetpu_compiler
  [options] model...`` writes ``<name>_edgetpu.tflite`` (``-out_dir``, ``-s`` to show the op
  table); runs on x86-64 Debian/Ubuntu only.
* Source D - a published compiler log (edgetpu_compiler 14.1): ops after the first unmapped op
  are reported "More than one subgraph is not supported", i.e. the compiler maps one leading
  segment and everything after the first CPU op runs on the CPU. Ops can also be refused as
  "Operation version not supported".

Where the TPU part ends: the ops of a ``.tflite`` are stored in execution order, a topological
order of the graph, and the compiler maps the leading run of ops it can take (source D). So the
TPU part is ops ``#0 .. #k-1`` and ends at op ``#k``, the first op not surely mappable; everything
from ``#k`` on runs on the CPU, however many mappable ops follow.

Ops not in those rows (``BATCH_MATMUL``, ``GELU``, ``SOFTMAX``, ``RSQRT``, ``TRANSPOSE``,
``STRIDED_SLICE``, ...) are marked ``check``: not confirmed from the retrieved sources, to be
read off ``edgetpu_compiler -s``. An activation x activation product (``BATCH_MATMUL``, or a
``FULLY_CONNECTED`` whose weights are not constant) is marked ``cpu``: it breaks the
"parameters constant at compile time" rule whatever the op's name.
"""

import dataclasses

from keras_vit.tflite.inspection import inspect_file

MAPPED = {
    "LOGISTIC": "", "RELU": "", "RELU6": "", "RELU_N1_TO_1": "", "TANH": "", "ADD": "", "MAXIMUM": "",
    "MINIMUM": "", "MUL": "", "SUB": "", "AVERAGE_POOL_2D": "no fused activation",
    "MAX_POOL_2D": "no fused activation", "CONCATENATION": "constant inputs only as zero padding",
    "CONV_2D": "", "DEPTHWISE_CONV_2D": "", "FULLY_CONNECTED": "constant weights, default format",
    "L2_NORMALIZATION": "", "MEAN": "no batch reduction; z-reduction needs z % 4 == 0", "PAD": "",
    "RESHAPE": "", "RESIZE_BILINEAR": "", "RESIZE_NEAREST_NEIGHBOR": "", "EXPAND_DIMS": "",
    "PACK": "", "PRELU": "", "QUANTIZE": "", "REDUCE_MAX": "", "REDUCE_MIN": "",
}
COMMAND = "edgetpu_compiler -s -o {out_dir} {model}"


@dataclasses.dataclass
class OpPlacement:
    index: int
    op: str
    placement: str  # "tpu", "check" or "cpu"
    reason: str


def _reduces_innermost(op, shapes, constants) -> bool:
    axes = constants.get(op.inputs[1]) if len(op.inputs) > 1 else None
    rank = len(shapes.get(op.inputs[0], []))
    return axes is not None and any(int(a) % max(rank, 1) == rank - 1 for a in axes)


def _placement(op, info, constant_tensors, shapes, constants):
    big_rank = [i for i in op.inputs + op.outputs
                if i >= 0 and i not in constant_tensors and sum(s > 1 for s in shapes[i]) > 3]
    if big_rank:
        return "cpu", f"a tensor with more than 3 dimensions > 1 ({shapes[big_rank[0]]})"
    if op.name == "BATCH_MATMUL":
        return "cpu", "activation x activation product (parameters must be compile-time constants)"
    if op.name == "FULLY_CONNECTED" and len(op.inputs) > 1 and op.inputs[1] not in constant_tensors:
        return "cpu", "FULLY_CONNECTED with non-constant weights"
    if op.name == "FULLY_CONNECTED" and op.outputs and sum(s > 1 for s in shapes[op.outputs[0]]) > 1:
        return "check", "token-wise FULLY_CONNECTED: the published row says 'output tensor is one-dimensional'"
    if op.name == "MEAN" and _reduces_innermost(op, shapes, constants):
        return "check", "MEAN over the innermost axis: Coral's row says x/y reductions only, Axis' says z % 4 == 0"
    if op.name == "GELU":
        return "cpu", "the fused GELU op is not in the Edge TPU table (export with gelu='sigmoid')"
    if op.name in MAPPED:
        return "tpu", MAPPED[op.name] or "in the Edge TPU op table"
    return "check", "not in the retrieved Edge TPU table rows; read `edgetpu_compiler -s`"


def edgetpu_report(path) -> dict:
    """Predicts the Edge TPU compiler's placement of each op of ``path`` (see the module docstring).

    Returns:
        ``{"ops": [OpPlacement...], "first_cpu_op": OpPlacement | None (first op not surely on the TPU),
        "first_certain_cpu_op": OpPlacement | None, "tpu_prefix_ops": int,
        "total_ops": int, "int8": bool, "static_shapes": bool, "command": str}``.
    """
    from ai_edge_litert import schema_py_generated as schema

    from keras_vit.tflite.inspection import read_model_bytes

    info = inspect_file(path)
    model = schema.Model.GetRootAs(read_model_bytes(path), 0)
    graph = model.Subgraphs(0)
    constant_tensors, shapes, constants = set(), {}, {}
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        shapes[i] = [int(s) for s in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
        buffer = model.Buffers(tensor.Buffer())
        if buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0):
            constant_tensors.add(i)
            if tensor.Type() == schema.TensorType.INT32 and buffer.DataLength() and buffer.DataLength() <= 64:
                constants[i] = buffer.DataAsNumpy().view("<i4")  # small int32 constants: axes
    placements = [OpPlacement(op.index, op.name, *_placement(op, info, constant_tensors, shapes, constants))
                  for op in info.operators]
    first_cpu = next((p for p in placements if p.placement != "tpu"), None)
    prefix = placements.index(first_cpu) if first_cpu else len(placements)
    first_certain_cpu = next((p for p in placements if p.placement == "cpu"), None)
    io_types = {info.inputs[0][1], info.outputs[0][1]}
    return {
        "ops": placements,
        "first_cpu_op": first_cpu,
        "first_certain_cpu_op": first_certain_cpu,
        "tpu_prefix_ops": prefix,
        "total_ops": len(placements),
        "int8": not info.float_ops() and io_types <= {"INT8", "UINT8"},
        "static_shapes": not info.has_dynamic_shapes,
        "command": COMMAND.format(out_dir=".", model=path),
    }


def format_report(report: dict) -> str:
    """A short text summary of :func:`edgetpu_report`."""
    first = report["first_cpu_op"]
    prefix, total = report["tpu_prefix_ops"], report["total_ops"]
    lines = [
        f"full integer: {report['int8']}, static shapes: {report['static_shapes']}",
        f"leading ops the Edge TPU can take: {prefix} of {total}",
        ("TPU part: " + (f"ops #0-#{prefix - 1}" if prefix else "none") + f"; it ends at op #{first.index} {first.op} "
         f"({first.reason}): the compiler maps one leading segment, so ops #{first.index}-#{total - 1} run on the CPU"
         if first else "TPU part: every op (nothing left to the CPU)"),
        "first op that certainly runs on the CPU: " + (
            f"op #{report['first_certain_cpu_op'].index} {report['first_certain_cpu_op'].op} "
            f"({report['first_certain_cpu_op'].reason})" if report["first_certain_cpu_op"] else "none"),
        f"compile with: {report['command']}",
    ]
    return "\n".join(lines)
