"""Keras' own doors on keras_vit models: ``model.export`` in each of Keras' formats, run in its runtime.

Each family's conversions run in a fresh interpreter (``run_python``: TFLiteConverter leaks memory); the
script prints the largest logit difference per format as JSON.
"""

import json

import pytest

from conftest import run_python
from test_weights_hub import IMAGENET, StandIn, go_offline, online, random_model, same_weights  # noqa: F401

import keras_vit

# One small variant per registered family: the plain ViT and the hybrid (conv stem).
FAMILIES = ("vit_test", "vit_hybrid_test")
FORMATS = ("litert", "onnx", "tf_saved_model")
# float32 end to end; the erf GELU and decomposed LayerNorm differ from the fused kernels by rounding only.
FLOAT_TOLERANCE = 1e-4


def _export_all_script(variant, root):
    return f"""
import json, os
import numpy as np
import keras_vit
model = keras_vit.create_model({variant!r})
x = np.random.default_rng(0).normal(size=(2,) + tuple(model.input_shape[1:])).astype("float32")
expected = np.asarray(model(x))
diffs = {{}}
model.export(os.path.join({root!r}, "m.tflite"), format="litert", verbose=False)
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(os.path.join({root!r}, "m.tflite"))
signature = interpreter.get_signature_runner()
name = list(signature.get_input_details())[0]
out = np.stack([list(signature(**{{name: x[i:i + 1]}}).values())[0][0] for i in range(len(x))])
diffs["litert"] = float(np.abs(out - expected).max())
model.export(os.path.join({root!r}, "m.onnx"), format="onnx", verbose=False)
import onnx, onnxruntime
ops = sorted({{node.op_type for node in onnx.load(os.path.join({root!r}, "m.onnx")).graph.node}})
session = onnxruntime.InferenceSession(os.path.join({root!r}, "m.onnx"))
out = session.run(None, {{session.get_inputs()[0].name: x}})[0]
diffs["onnx"] = float(np.abs(out - expected).max())
model.export(os.path.join({root!r}, "saved"), format="tf_saved_model", verbose=False)
import tensorflow as tf
loaded = tf.saved_model.load(os.path.join({root!r}, "saved"))  # kept: its variables die with it
out = loaded.serve(tf.constant(x)).numpy()
diffs["tf_saved_model"] = float(np.abs(out - expected).max())
print("RESULT", json.dumps({{"diffs": diffs, "onnx_ops": ops}}))
"""


@pytest.mark.parametrize("variant", FAMILIES)
def test_keras_export_formats_run_in_their_runtimes(variant, tmp_path):
    out = run_python(_export_all_script(variant, str(tmp_path)))
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert "Erfc" not in result["onnx_ops"], result["onnx_ops"]
    assert sorted(result["diffs"]) == sorted(FORMATS)
    for fmt, diff in result["diffs"].items():
        assert diff < FLOAT_TOLERANCE, (variant, fmt, diff)


# Keras' weight-only int8 on a random-init model: logits move by a few percent of their range (measured
# 2.4% for vit_test, 1.1% for vit_hybrid_test); int4 and float8 are coarser (up to 33% at random init).
INT8_RELATIVE_BOUND = 0.1


def _quantize_script(variant, root):
    return f"""
import json, os
import numpy as np
import keras_vit
results = {{}}
for mode in ("int8", "int4", "float8"):
    model = keras_vit.create_model({variant!r})
    x = np.random.default_rng(0).normal(size=(2,) + tuple(model.input_shape[1:])).astype("float32")
    float_logits = np.asarray(model(x))
    model.quantize(mode)
    quantized = np.asarray(model(x))
    path = os.path.join({root!r}, mode + ".keras")
    model.save(path)
    reloaded = keras_vit.load_model(path)
    results[mode] = {{
        "vs_float": float(np.abs(quantized - float_logits).max()),
        "float_range": float(np.abs(float_logits).max()),
        "reload": float(np.abs(np.asarray(reloaded(x)) - quantized).max()),
        "modes": sorted({{layer.quantization_mode for layer in reloaded._flatten_layers()
                         if layer.quantization_mode}}),
    }}
    if mode == "int8":
        # LiteRT's converter refuses Keras' int8 x int8 matmul (tfl.fully_connected takes no raw i8): ONNX it is.
        onnx_path = os.path.join({root!r}, "int8.onnx")
        reloaded.export(onnx_path, format="onnx", verbose=False)
        import onnxruntime
        session = onnxruntime.InferenceSession(onnx_path)
        out = session.run(None, {{session.get_inputs()[0].name: x}})[0]
        results[mode]["onnx"] = float(np.abs(out - quantized).max())
print("RESULT", json.dumps(results))
"""


@pytest.mark.parametrize("variant", FAMILIES)
def test_keras_quantize_saves_reloads_and_exports(variant, tmp_path):
    out = run_python(_quantize_script(variant, str(tmp_path)))
    results = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    for mode, result in results.items():
        assert result["modes"] == [mode], (mode, result)  # the reloaded Dense layers are still quantized
        assert result["reload"] == 0.0, (mode, result)
        assert 0.0 < result["vs_float"], (mode, result)  # quantization did change the weights
    int8 = results["int8"]
    assert int8["vs_float"] < INT8_RELATIVE_BOUND * int8["float_range"], int8
    assert int8["onnx"] < FLOAT_TOLERANCE, int8


# Its own checkpoint and stand-in: the pretrained table is per process, shared with test_weights_hub's names.
DOORS_NAME, DOORS_REPO = "vit_test.standin_doors", "standin/vit_test.standin_doors"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A stand-in Hub serving one timm-layout repository (config.json, model.safetensors, no preprocessor)."""
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.weights import Pretrained, export_timm, register_pretrained

    root = tmp_path_factory.mktemp("doors_standin")
    server = StandIn()
    model = random_model(3)
    export_timm(model, str(root / "timm"), Preprocessing(32, mean=IMAGENET[0], std=IMAGENET[1],
                                                         interpolation="bicubic"))
    server.add_repo(DOORS_REPO, root / "timm")
    if keras_vit.weights.find_pretrained(DOORS_NAME) is None:
        register_pretrained(Pretrained(DOORS_NAME, "vit_test", 32, 10, "in1k", repo=DOORS_REPO))
    yield type("Hub", (), {"server": server, "timm": model})
    server.close()


def test_timm_filled_cache_loads_offline_without_the_optional_preprocessor_config(hub, online):
    # The cache exactly as timm (or `hf download REPO config.json model.safetensors`) leaves it: two files,
    # no record of preprocessor_config.json either way.
    import huggingface_hub

    for filename in ("config.json", "model.safetensors"):
        huggingface_hub.hf_hub_download(DOORS_REPO, filename, endpoint=hub.server.url)
    cached = huggingface_hub.try_to_load_from_cache(DOORS_REPO, "preprocessor_config.json")
    assert cached is None  # neither the file nor a "does not exist" marker
    served = hub.server.requests
    go_offline(online)
    model = keras_vit.create_model(DOORS_NAME, pretrained=True)
    assert same_weights(model, hub.timm) and hub.server.requests == served
    assert (model.mean, model.std, model.interpolation) == (IMAGENET[0], IMAGENET[1], "bicubic")
