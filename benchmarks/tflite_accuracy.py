"""Accuracy retention of every TFLite mode on the CIFAR-10 test set, with each quantization attempt.

Exports a trained CIFAR-10 ViT in every mode and in variants of full-integer int8 (per-tensor vs
per-channel weights, calibration size, GELU / LayerNorm / attention formulations), runs each file
with LiteRT on the 10,000 real test JPEGs and prints top-1 next to Keras float, plus agreement
with Keras, file size and batch-1 latency. Results: benchmarks/results/tflite_accuracy.json.

Command (2 CPU cores; ~5 min):
    python benchmarks/tflite_accuracy.py --model /work/runs/cifar10/best.keras
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# name: (mode, changes to the mode's formulation, per_channel, calibration images[, changes to its
# converter settings]). Each row runs its mode's own formulation and converter settings, with only the
# named fields changed. Every file is exported with logits out, so the logit error compares like with like.
EXPERIMENTS = {
    "float32": ("float32", {}, True, 0),
    "float16": ("float16", {}, True, 0),
    "dynamic": ("dynamic", {}, True, 0),
    "int8_cpu": ("int8_cpu", {}, True, 300),
    "int8_cpu recipe fc_bmm_int8": ("int8_cpu", {}, True, 300, {"quantizer_recipe": "fc_bmm_int8"}),
    "int8_cpu recipe all_int8": ("int8_cpu", {}, True, 300, {"quantizer_recipe": "all_int8"}),
    "int8": ("int8", {}, True, 300),
    "uint8": ("uint8", {}, True, 300),
    "int16x8": ("int16x8", {}, True, 300),
    "edgetpu": ("edgetpu", {}, True, 300),
    "int8 per-tensor weights": ("int8", {}, False, 300),
    "int8 calibration 32": ("int8", {}, True, 32),
    "int8 calibration 1000": ("int8", {}, True, 1000),
    "int8 gelu=sigmoid (tanh approx.)": ("int8", {"gelu": "sigmoid"}, True, 300),
    "int8 layer_norm=newton": ("int8", {"layer_norm": "newton"}, True, 300),
    "int8 attention=per_head": ("int8", {"attention": "per_head"}, True, 300),
    "int8 patch_embedding=conv": ("int8", {"patch_embedding": "conv"}, True, 300),
    "int16x8 layer_norm=decomposed": ("int16x8", {"layer_norm": "decomposed"}, True, 300),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/work/runs/cifar10/best.keras")
    parser.add_argument("--test-count", type=int, default=None, help="default: the whole test set")
    parser.add_argument("--only", nargs="*", default=None, help="experiment names to run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "tflite_accuracy.json"))
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from keras_vit.datasets import CIFAR10_LABELS, cifar10_dir
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.atomic import atomic_write
    from keras_vit.tflite.convert import export_tflite
    from keras_vit.images import read_image_folder
    from keras_vit.tflite.modes import MODES
    from keras_vit.tflite.runtime import LiteRTModel

    model = keras.models.load_model(args.model, compile=False)
    p = Preprocessing.for_model(model)
    x_test, y_test, classes = read_image_folder(cifar10_dir("test"), p.image_size, limit=args.test_count)
    assert tuple(classes) == CIFAR10_LABELS
    x_cal, _, _ = read_image_folder(cifar10_dir("train"), p.image_size, limit=1000, seed=123)
    x_norm = p.normalize(x_test)
    keras_logits = model.predict(x_norm, batch_size=256, verbose=0)
    keras_top1 = float(np.mean(keras_logits.argmax(-1) == y_test))
    print(f"{model.name}: Keras float top-1 {keras_top1:.4f} on {len(x_test)} CIFAR-10 test images")
    rows = []
    names = args.only or list(EXPERIMENTS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            mode, overrides, per_channel, count, converter = (EXPERIMENTS[name] + ({},))[:5]
            formulation = dataclasses.replace(MODES[mode].formulation, **overrides)
            variant = dataclasses.replace(MODES[mode], converter=dataclasses.replace(MODES[mode].converter, **converter))
            path = os.path.join(tmp, name.replace(" ", "_").replace("=", "-") + ".tflite")
            start = time.time()
            export_tflite(model, path, mode=variant, calibration=x_cal[:count] if count else None,
                          labels=CIFAR10_LABELS, calibration_size=max(count, 1), formulation=formulation,
                          per_channel=per_channel, outputs="logits")
            runtime = LiteRTModel(path, num_threads=args.threads)
            logits = runtime.predict(x_test)
            latency = runtime.benchmark(runs=50, warmup=5)
            row = {
                "experiment": name, "mode": mode, "formulation": dataclasses.asdict(formulation), "per_channel": per_channel,
                "calibration_images": count, "top1": float(np.mean(logits.argmax(-1) == y_test)),
                "agreement_with_keras": float(np.mean(logits.argmax(-1) == keras_logits.argmax(-1))),
                "max_abs_logit_error": float(np.abs(logits - keras_logits).max()),
                "size_kib": os.path.getsize(path) / 1024, "p50_ms": latency["p50_ms"],
                "delegate_partitions": runtime.delegate_partitions(), "seconds": time.time() - start,
            }
            row["delta_points"] = 100 * (row["top1"] - keras_top1)
            rows.append(row)
            print(f"{name:<36} top-1 {row['top1']:.4f} ({row['delta_points']:+.2f} pt)  agree {row['agreement_with_keras']:.4f}"
                  f"  {row['size_kib']:7.1f} KiB  {row['p50_ms']:6.3f} ms  {row['delegate_partitions']:2d} partitions",
                  flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "model": args.model, "model_name": model.name, "params": model.count_params(),
            "test_images": len(x_test), "keras_top1": keras_top1, "threads": args.threads,
            "command": "python benchmarks/tflite_accuracy.py " + " ".join(argv or sys.argv[1:])}
    atomic_write(args.output, json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"\n| experiment | top-1 | vs float (pt) | agreement | KiB | p50 ms | XNNPACK partitions |\n|---|---|---|---|---|---|---|")
    print(f"| Keras float32 | {keras_top1:.4f} | - | - | - | - | - |")
    for r in rows:
        print(f"| {r['experiment']} | {r['top1']:.4f} | {r['delta_points']:+.2f} | {r['agreement_with_keras']:.4f} | "
              f"{r['size_kib']:.0f} | {r['p50_ms']:.3f} | {r['delegate_partitions']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
