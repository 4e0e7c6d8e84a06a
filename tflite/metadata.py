"""TFLite metadata inside the ``.tflite``: labels, normalization and tensor descriptions that apps read.

MediaPipe Tasks' ``ImageClassifier`` (Android, iOS, Python) and Android Studio's model binding read
the metadata of the TFLite metadata schema (``metadata_schema.fbs``, file identifier ``M001``),
stored in the model's buffer named ``TFLITE_METADATA``, with the labels in ``labels.txt``, an
associated file packed as a zip archive appended to the flatbuffer. MediaPipe refuses a float32
input without ``NormalizationOptions`` and names no class without the labels file.

* :func:`add_metadata` writes it with ``flatbuffers`` alone: the few tables an image classifier
  needs, built by field slot from ``metadata_schema.fbs`` (the same slots the reader uses), so no
  schema package is installed to write it. Maintained writers do not coexist with TensorFlow 2.21:
  mediapipe 1.2.2's ``metadata_writers`` do not import, and the releases whose writers do
  (mediapipe 0.10.21: numpy<2; mediapipe-numpy2 0.10.21: protobuf<5; tflite-support 0.4.4:
  protobuf<4) cannot be installed beside its protobuf>=6.31.1. tests/test_tflite_metadata.py
  checks the bytes with the schema's generated Python from the mediapipe wheel and with
  MediaPipe's ``ImageClassifier`` itself.
* :func:`read_metadata` reads it back with ``ai_edge_litert``'s model schema and ``flatbuffers``
  only (no TensorFlow, no mediapipe), so the device runtime can use the same labels and mean/std.
* :func:`apply_outputs` ends the traced graph in a softmax (``outputs="probabilities"``, the default
  for files apps consume: MediaPipe reports the output tensor as the scores) or leaves the logits.

The schema's mean and std are in the pixel domain (0-255): ours are for ``pixel / 255``, so the file
holds ``mean * 255`` and ``std * 255``. A uint8 input is fed raw pixels by MediaPipe, so for it the
input quantization must equal the normalization (see docs/edge.md); int8 inputs MediaPipe refuses.

Example:
    >>> from keras_vit.preprocessing import Preprocessing
    >>> data = open("vit_float32.tflite", "rb").read()                                  # doctest: +SKIP
    >>> data = add_metadata(data, ["cat", "dog"], Preprocessing(image_size=32))          # doctest: +SKIP
    >>> read_metadata(data)["labels"], read_metadata(data)["mean"]                       # doctest: +SKIP
    (['cat', 'dog'], (0.5, 0.5, 0.5))
"""

import io
import zipfile

OUTPUTS = ("probabilities", "logits")
METADATA_BUFFER = "TFLITE_METADATA"
LABELS_FILE = "labels.txt"
_IDENTIFIER = b"M001"
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions
# Every field written is in schema 1.0.0 (see the version history in metadata_schema.fbs).
_MIN_PARSER_VERSION = "1.0.0"


def check_outputs(outputs: str) -> str:
    """Returns ``outputs`` when it is ``"probabilities"`` or ``"logits"``; raises otherwise."""
    if outputs not in OUTPUTS:
        raise ValueError(f"outputs must be one of {OUTPUTS}; received outputs={outputs!r}.")
    return outputs


def apply_outputs(logits, outputs: str = "probabilities"):
    """The traced graph's last step: a softmax over the classes (``"probabilities"``) or nothing.

    Args:
        logits: the model's output tensor ``(batch, num_classes)`` at trace time.
        outputs: ``"probabilities"`` or ``"logits"``.

    Returns:
        A tensor of the same shape; in a converted file the softmax is one ``SOFTMAX`` op.
    """
    import keras

    return keras.ops.softmax(logits, axis=-1) if check_outputs(outputs) == "probabilities" else logits


# Field slots of metadata_schema.fbs (a union takes two slots, its type and then its value); the
# writer and the reader share them. Tables with the number of slots each declares.
_MODEL_SLOTS, _MODEL_SUBGRAPHS, _MODEL_NAME, _MODEL_DESCRIPTION, _MODEL_MIN_PARSER = 8, 3, 0, 1, 7
_SUBGRAPH_SLOTS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 10, 2, 3
_TENSOR_SLOTS, _TENSOR_NAME, _TENSOR_DESCRIPTION, _TENSOR_CONTENT = 7, 0, 1, 3
_TENSOR_PROCESS_UNITS, _TENSOR_STATS, _TENSOR_FILES = 4, 5, 6
_CONTENT_SLOTS, _CONTENT_TYPE, _CONTENT_VALUE = 3, 0, 1
_IMAGE_SLOTS, _IMAGE_COLOR_SPACE = 2, 0
_UNIT_SLOTS, _UNIT_TYPE, _UNIT_OPTIONS = 2, 0, 1
_NORM_SLOTS, _NORM_MEAN, _NORM_STD = 2, 0, 1
_STATS_SLOTS, _STATS_MAX, _STATS_MIN = 2, 0, 1
_FILE_SLOTS, _FILE_NAME, _FILE_DESCRIPTION, _FILE_TYPE = 5, 0, 1, 2
# Enum values of the schema.
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties
_RGB, _GRAYSCALE = 1, 2  # ColorSpaceType


def _table(builder, slots: int, fields) -> int:
    """One table: ``fields`` are ``(slot, kind, value)`` with kind ``"offset"``, ``"int8"`` or ``"uint8"``."""
    builder.StartObject(slots)
    for slot, kind, value in fields:
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "int8":
            builder.PrependInt8Slot(slot, value, 0)
        else:
            builder.PrependUint8Slot(slot, value, 0)
    return builder.EndObject()


def _offsets(builder, offsets) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder, values) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(float(value))
    return builder.EndVector()


def _tensor(builder, name, description, content, process_units=(), stats=None, files=()) -> int:
    fields = [(_TENSOR_NAME, "offset", builder.CreateString(name)),
              (_TENSOR_DESCRIPTION, "offset", builder.CreateString(description)),
              (_TENSOR_CONTENT, "offset", content)]
    if process_units:
        fields.append((_TENSOR_PROCESS_UNITS, "offset", _offsets(builder, list(process_units))))
    if stats is not None:
        fields.append((_TENSOR_STATS, "offset", stats))
    if files:
        fields.append((_TENSOR_FILES, "offset", _offsets(builder, list(files))))
    return _table(builder, _TENSOR_SLOTS, fields)


def _metadata_bytes(labels, preprocessing, outputs, name, description) -> bytes:
    """The ``M001`` flatbuffer, built with ``flatbuffers`` alone (the schema's few tables, by slot)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    mean = _floats(b, [m * 255.0 for m in preprocessing.mean])
    std = _floats(b, [d * 255.0 for d in preprocessing.std])
    unit = _table(b, _UNIT_SLOTS, [(_UNIT_TYPE, "uint8", _NORMALIZATION_OPTIONS), (_UNIT_OPTIONS, "offset", _table(
        b, _NORM_SLOTS, [(_NORM_MEAN, "offset", mean), (_NORM_STD, "offset", std)]))])
    image = _table(b, _IMAGE_SLOTS, [(_IMAGE_COLOR_SPACE, "int8", _GRAYSCALE if preprocessing.channels == 1 else _RGB)])
    height, width = preprocessing.image_size
    image_tensor = _tensor(
        b, "image", f"{height}x{width} {'grayscale' if preprocessing.channels == 1 else 'RGB'} image, "
        f"normalized per channel as (pixel - mean) / std with the mean and std below (0-255 pixels).",
        _table(b, _CONTENT_SLOTS, [(_CONTENT_TYPE, "uint8", _IMAGE_PROPERTIES), (_CONTENT_VALUE, "offset", image)]),
        [unit])
    labels_file = _table(b, _FILE_SLOTS, [
        (_FILE_NAME, "offset", b.CreateString(LABELS_FILE)),
        (_FILE_DESCRIPTION, "offset", b.CreateString("Class names, one a line, in output order.")),
        (_FILE_TYPE, "int8", _TENSOR_AXIS_LABELS)])
    stats = None
    if outputs == "probabilities":
        top, bottom = _floats(b, [1.0]), _floats(b, [0.0])
        stats = _table(b, _STATS_SLOTS, [(_STATS_MAX, "offset", top), (_STATS_MIN, "offset", bottom)])
    meaning = "Probability of each class (softmax)." if outputs == "probabilities" else "Logit of each class."
    feature = _table(b, 0, [])
    scores = _tensor(b, outputs, meaning, _table(b, _CONTENT_SLOTS, [
        (_CONTENT_TYPE, "uint8", _FEATURE_PROPERTIES), (_CONTENT_VALUE, "offset", feature)]),
        stats=stats, files=[labels_file])
    subgraph = _table(b, _SUBGRAPH_SLOTS, [(_SUBGRAPH_INPUTS, "offset", _offsets(b, [image_tensor])),
                                           (_SUBGRAPH_OUTPUTS, "offset", _offsets(b, [scores]))])
    fields = [(_MODEL_NAME, "offset", b.CreateString(name)),
              (_MODEL_SUBGRAPHS, "offset", _offsets(b, [subgraph])),
              (_MODEL_MIN_PARSER, "offset", b.CreateString(_MIN_PARSER_VERSION))]
    if description:
        fields.append((_MODEL_DESCRIPTION, "offset", b.CreateString(description)))
    b.Finish(_table(b, _MODEL_SLOTS, fields), file_identifier=_IDENTIFIER)
    return bytes(b.Output())


def add_metadata(tflite_bytes: bytes, labels, preprocessing, *, outputs: str = "probabilities",
                 name: str = "keras_vit image classifier", description=None) -> bytes:
    """The model with image-classifier metadata and its labels file; replaces metadata already there.

    Args:
        tflite_bytes: a converted ``.tflite`` with one image input ``(1, H, W, C)`` and one output
            ``(1, num_classes)``.
        labels: class names in output order.
        preprocessing: the input contract (``keras_vit.preprocessing.Preprocessing`` or its dict);
            its mean/std (for ``pixel / 255``) are written times 255.
        outputs: what the output holds, ``"probabilities"`` (the graph ends in softmax) or ``"logits"``.
        name: the model's name in the metadata.
        description: one line about the model for the metadata.

    Returns:
        The new ``.tflite`` bytes: the re-packed flatbuffer followed by a zip archive with ``labels.txt``.

    Raises:
        ValueError: labels that do not match the outputs, a contract that does not match the input,
            or a label with a line break.
    """
    import numpy as np
    from ai_edge_litert import schema_py_generated as tfl
    from ai_edge_litert.tools import flatbuffer_utils

    from keras_vit.preprocessing import Preprocessing
    from keras_vit.tflite.contract import check_labels

    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    model = flatbuffer_utils.read_model_from_bytearray(bytes(tflite_bytes))
    graph = model.subgraphs[0]
    input_shape = [int(s) for s in graph.tensors[graph.inputs[0]].shape]
    output_shape = [int(s) for s in graph.tensors[graph.outputs[0]].shape]
    expected = [1, *preprocessing.image_size, preprocessing.channels]
    if input_shape != expected:
        raise ValueError(f"The model's input is {input_shape} but preprocessing describes {expected}.")
    labels = check_labels(labels, output_shape[-1])
    if any("\n" in label or "\r" in label for label in labels):
        raise ValueError(f"labels.txt holds one name a line: a label may not contain a line break; received {labels}.")

    data = np.frombuffer(_metadata_bytes(labels, preprocessing, check_outputs(outputs), name, description), np.uint8)
    entries = [entry for entry in (model.metadata or []) if entry.name in (METADATA_BUFFER, METADATA_BUFFER.encode())]
    if entries:
        model.buffers[entries[0].buffer].data = data
    else:
        buffer = tfl.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        entry = tfl.MetadataT()
        entry.name, entry.buffer = METADATA_BUFFER, len(model.buffers) - 1
        model.metadata = list(model.metadata or []) + [entry]
    packed = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    packed.seek(0, io.SEEK_END)
    with zipfile.ZipFile(packed, "a", compression=zipfile.ZIP_STORED) as archive:  # appended after the model
        info = zipfile.ZipInfo(LABELS_FILE, date_time=(1980, 1, 1, 0, 0, 0))  # same bytes for the same model
        archive.writestr(info, "".join(label + "\n" for label in labels))
    return packed.getvalue()


class _Table:
    """Fields of one flatbuffer table by slot number (what generated code does, for the few fields we read)."""

    def __init__(self, buf, pos):
        from flatbuffers.table import Table

        self.tab = Table(buf, pos)

    def _at(self, slot):
        return self.tab.Offset(4 + 2 * slot)

    def string(self, slot):
        o = self._at(slot)
        return self.tab.String(o + self.tab.Pos).decode("utf-8") if o else None

    def byte(self, slot):
        from flatbuffers.number_types import Uint8Flags

        o = self._at(slot)
        return self.tab.Get(Uint8Flags, o + self.tab.Pos) if o else 0

    def table(self, slot):
        o = self._at(slot)
        return _Table(self.tab.Bytes, self.tab.Indirect(o + self.tab.Pos)) if o else None

    def tables(self, slot):
        o = self._at(slot)
        if not o:
            return []
        start = self.tab.Vector(o)
        return [_Table(self.tab.Bytes, self.tab.Indirect(start + 4 * i)) for i in range(self.tab.VectorLen(o))]

    def floats(self, slot):
        from flatbuffers.number_types import Float32Flags

        o = self._at(slot)
        return [float(v) for v in self.tab.GetVectorAsNumpy(Float32Flags, o)] if o else []


def _metadata_buffer(data: bytes):
    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode("utf-8") == METADATA_BUFFER:
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset():  # a buffer stored outside the flatbuffer (large models)
                return model, data[buffer.Offset():buffer.Offset() + buffer.Size()]
            return model, buffer.DataAsNumpy().tobytes()
    return model, None


def read_metadata(model, where=None) -> dict:
    """The image-classifier metadata of a ``.tflite``, read with LiteRT's schema and ``flatbuffers`` only.

    Args:
        model: a ``.tflite`` path or its bytes.
        where: the file's name for error messages (default: the path, or "the model").

    Returns:
        ``None`` for a file without metadata, else ``{"name", "description", "labels", "mean", "std",
        "outputs", "image_size", "channels"}``: ``mean`` and ``std`` per channel for ``pixel / 255``
        (the file's values divided by 255; ``None`` when absent), ``labels`` from the output's labels
        file (``None`` when absent), ``outputs`` ``"probabilities"`` / ``"logits"`` (the output
        tensor's name; ``None`` for another writer's name), ``image_size`` ``(H, W)`` and
        ``channels`` from the input tensor.

    Raises:
        ValueError: for a file that is not a TFLite model, or metadata that is not schema ``M001``.
    """
    from keras_vit.tflite.inspection import read_model_bytes

    data = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else read_model_bytes(model)
    if where is None:
        where = "the model" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)
    try:
        return _read_metadata(data)
    except Exception as error:  # damaged metadata raises anything from UnicodeDecodeError to struct.error
        raise ValueError(f"{where!r}: {error}") from error


def _read_metadata(data: bytes):
    from keras_vit.tflite.inspection import NotTFLiteError

    if data[4:8] != b"TFL3":
        raise NotTFLiteError("The data is not a TFLite flatbuffer (no TFL3 identifier).")
    graph, raw = _metadata_buffer(data)
    if raw is None:
        return None
    if raw[4:8] != _IDENTIFIER:
        raise ValueError(f"The {METADATA_BUFFER} buffer is not TFLite metadata (identifier {raw[4:8]!r}).")
    from flatbuffers import encode, packer

    root = _Table(raw, encode.Get(packer.uoffset, raw, 0))
    subgraphs = root.tables(_MODEL_SUBGRAPHS)
    inputs = subgraphs[0].tables(_SUBGRAPH_INPUTS) if subgraphs else []
    outputs = subgraphs[0].tables(_SUBGRAPH_OUTPUTS) if subgraphs else []
    mean = std = None
    for unit in inputs[0].tables(_TENSOR_PROCESS_UNITS) if inputs else []:
        if unit.byte(_UNIT_TYPE) == _NORMALIZATION_OPTIONS:
            options = unit.table(_UNIT_OPTIONS)
            mean = tuple(m / 255.0 for m in options.floats(_NORM_MEAN))
            std = tuple(d / 255.0 for d in options.floats(_NORM_STD))
    labels = None
    for file in outputs[0].tables(_TENSOR_FILES) if outputs else []:
        if file.byte(_FILE_TYPE) == _TENSOR_AXIS_LABELS:
            labels = _associated_file(data, file.string(_FILE_NAME)).splitlines()
    shape = graph.Subgraphs(0).Tensors(graph.Subgraphs(0).Inputs(0)).ShapeAsNumpy()
    channels = int(shape[-1])
    if mean is not None and len(mean) == 1:  # the schema lets one value stand for every channel
        mean, std = mean * channels, std * channels
    name = outputs[0].string(_TENSOR_NAME) if outputs else None
    return {
        "name": root.string(_MODEL_NAME),
        "description": root.string(_MODEL_DESCRIPTION),
        "labels": labels,
        "mean": mean,
        "std": std,
        "outputs": name if name in OUTPUTS else None,
        "image_size": (int(shape[1]), int(shape[2])),
        "channels": channels,
    }


def _associated_file(data: bytes, name: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read(name).decode("utf-8")
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"The metadata names the associated file {name!r} but the model does not pack it "
                         f"({error}). Re-write the metadata with add_metadata.") from error
