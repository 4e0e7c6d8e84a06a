"""ONNX export through tf2onnx, checked with onnxruntime against Keras on real CIFAR-10 images.

The model has a tanh pre-logits head, which the export must keep (it traces the model's own call).
"""

import json

import numpy as np
import pytest
from conftest import run_python


@pytest.mark.slow
def test_onnx_matches_keras_on_real_images(tmp_path, cifar10_sample, cifar10_test_root):
    np.save(tmp_path / "images.npy", cifar10_sample[0][:64])
    code = f"""
import json, numpy as np, keras, keras_vit
keras.utils.set_random_seed(1)
model = keras_vit.create_model("vit_test", representation_size=16, representation_activation="tanh")
model.save({str(tmp_path / "m.keras")!r})
from keras_vit.tflite.onnx_export import export_onnx
report = export_onnx(model, {str(tmp_path / "m.onnx")!r}, images=np.load({str(tmp_path / "images.npy")!r}))
print("REPORT", json.dumps(report))
from keras_vit.cli import main
print("EXIT", main(["export", {str(tmp_path / "m.keras")!r}, {str(tmp_path / "cli.onnx")!r},
                    "--verify-images", {cifar10_test_root!r}, "--verify-count", "40"]))
"""
    out = run_python(code)
    report = json.loads(out.split("REPORT", 1)[1].splitlines()[0])
    assert report["opset"] <= 18 and report["images"] == 64
    assert report["max_abs_error"] <= 1e-4 and report["ok"]
    assert report["top1_agreement"] == 1.0
    assert "EXIT 0" in out and (tmp_path / "cli.onnx").stat().st_size > 10_000

    import onnx

    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert "Erf" in ops and "Erfc" not in ops  # the exact GELU, in a form ONNX has
    assert "Tanh" in ops  # the tanh pre-logits head of the original ViT checkpoints
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 32, 32, 3]
    contract = json.loads((tmp_path / "m.json").read_text())
    assert contract["mode"] == "onnx" and len(contract["labels"]) == 10
