"""TFLite metadata inside the ``.tflite``: labels, normalization and tensor descriptions that apps read.

MediaPipe Tasks' ``ImageClassifier`` (Android, iOS, Python) and Android Studio's model binding read
the metadata of the TFLite metadata schema (``metadata_schema.fbs``, file identifier ``M001``),
stored in the model's buffer named ``TFLITE_METADATA``, with the labels in ``labels.txt``, an
associated file packed as a zip archive appended to the flatbuffer. MediaPipe refuses a float32
input without ``NormalizationOptions`` and names no class without the labels file.

* :func:`add_metadata` writes it. It builds the metadata with the schema's generated Python that the
  ``mediapipe`` wheel ships (``mediapipe/tasks/metadata/metadata_schema_py_generated.py``), loaded
  by path: mediapipe itself is not imported (it clashes with TensorFlow in one process), only
  ``flatbuffers`` runs. MediaPipe's own ``metadata_writers`` do not import in mediapipe 1.2.2, and
  the releases whose writers do (mediapipe 0.10.21: numpy<2; mediapipe-numpy2 0.10.21:
  protobuf<5; tflite-support 0.4.4: protobuf<4) cannot be installed beside TensorFlow 2.21
  (protobuf>=6.31.1).
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

import functools
import importlib.util
import io
import os
import zipfile

OUTPUTS = ("probabilities", "logits")
METADATA_BUFFER = "TFLITE_METADATA"
LABELS_FILE = "labels.txt"
_IDENTIFIER = b"M001"
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions
# Every field written is in schema 1.0.0 (see the version history in metadata_schema.fbs).
_MIN_PARSER_VERSION = "1.0.0"
# Field slots of metadata_schema.fbs (a union takes two slots, its type and then its value).
_MODEL_SUBGRAPHS, _MODEL_NAME, _MODEL_DESCRIPTION = 3, 0, 1
_SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 2, 3
_TENSOR_NAME, _TENSOR_PROCESS_UNITS, _TENSOR_FILES = 0, 4, 6
_UNIT_TYPE, _UNIT_OPTIONS = 0, 1
_NORM_MEAN, _NORM_STD = 0, 1
_FILE_NAME, _FILE_TYPE = 0, 2


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


@functools.lru_cache(maxsize=1)
def _schema():
    spec = importlib.util.find_spec("mediapipe")  # locates the package without running its __init__
    path = spec and os.path.join(spec.submodule_search_locations[0], "tasks", "metadata",
                                 "metadata_schema_py_generated.py")
    if not path or not os.path.isfile(path):
        raise ImportError(
            "Writing TFLite metadata uses the metadata schema that the mediapipe wheel ships "
            "(mediapipe/tasks/metadata/metadata_schema_py_generated.py); install it with "
            "`pip install mediapipe==1.2.2`. Only that file is loaded, mediapipe is not imported."
        )
    module_spec = importlib.util.spec_from_file_location("keras_vit_tflite_metadata_schema", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _tensor(schema, name, description, content_type, content, process_units=(), files=()):
    tensor = schema.TensorMetadataT()
    tensor.name, tensor.description = name, description
    tensor.content = schema.ContentT()
    tensor.content.contentPropertiesType, tensor.content.contentProperties = content_type, content
    tensor.processUnits = list(process_units) or None
    tensor.associatedFiles = list(files) or None
    return tensor


def _metadata_bytes(labels, preprocessing, outputs, name, description) -> bytes:
    import flatbuffers

    s = _schema()
    image = s.ImagePropertiesT()
    image.colorSpace = s.ColorSpaceType.GRAYSCALE if preprocessing.channels == 1 else s.ColorSpaceType.RGB
    normalization = s.NormalizationOptionsT()
    normalization.mean = [m * 255.0 for m in preprocessing.mean]
    normalization.std = [d * 255.0 for d in preprocessing.std]
    unit = s.ProcessUnitT()
    unit.optionsType, unit.options = s.ProcessUnitOptions.NormalizationOptions, normalization
    height, width = preprocessing.image_size
    image_tensor = _tensor(
        s, "image", f"{height}x{width} {'grayscale' if preprocessing.channels == 1 else 'RGB'} image, "
        f"normalized per channel as (pixel - mean) / std with the mean and std below (0-255 pixels).",
        s.ContentProperties.ImageProperties, image, [unit])
    labels_file = s.AssociatedFileT()
    labels_file.name, labels_file.type = LABELS_FILE, s.AssociatedFileType.TENSOR_AXIS_LABELS
    labels_file.description = "Class names, one a line, in output order."
    meaning = "Probability of each class (softmax)." if outputs == "probabilities" else "Logit of each class."
    scores = _tensor(s, outputs, meaning, s.ContentProperties.FeatureProperties, s.FeaturePropertiesT(),
                     files=[labels_file])
    if outputs == "probabilities":
        scores.stats = s.StatsT()
        scores.stats.max, scores.stats.min = [1.0], [0.0]
    subgraph = s.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image_tensor], [scores]
    model = s.ModelMetadataT()
    model.name, model.description = name, description
    model.subgraphMetadata, model.minParserVersion = [subgraph], _MIN_PARSER_VERSION
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


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
        ImportError: without the mediapipe wheel (its generated schema builds the metadata).
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


def read_metadata(model) -> dict:
    """The image-classifier metadata of a ``.tflite``, read with LiteRT's schema and ``flatbuffers`` only.

    Args:
        model: a ``.tflite`` path or its bytes.

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
    from keras_vit.tflite.inspection import NotTFLiteError, read_model_bytes

    data = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else read_model_bytes(model)
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
