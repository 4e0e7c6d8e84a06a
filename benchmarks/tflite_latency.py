"""Batch-1 latency of ViT-Ti/16 at 224x224 in every TFLite mode (LiteRT, 2 threads), next to KerasHub and timm.

In one run: our ``vit_tiny_patch16_224`` exported in every mode and in int8 variants (a changed
field of the mode's ``Formulation`` or converter settings, :mod:`keras_vit.tflite.modes`), KerasHub's ViT-Ti (``keras_hub.models.ViTBackbone`` with
the Ti sizes, random weights: no download) converted to float / dynamic-range / full-int8 TFLite,
and timm's ``vit_tiny_patch16_224`` in PyTorch eager. For each LiteRT file it records the XNNPACK
DELEGATE partition count and the ops left outside XNNPACK (the op profile that explains a slow
integer graph). Weights are random: latency does not depend on their values; int8 calibration
uses 32 real CIFAR-10 images resized to 224.

Needs torch==2.13.0 timm==1.0.31 keras-hub==0.32.0 beside keras_vit (a separate venv is fine):
    python benchmarks/tflite_latency.py --threads 2 --runs 100
On a shared machine, let the rows take turns: ``--rounds 3 --runs 40`` (median of the rounds' p50).
Results: benchmarks/results/tflite_latency.json.
"""

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# name: (mode, changes to the mode's formulation, changes to its converter settings). Each row runs
# its mode's own formulation and converter settings, with only the named fields changed.
OURS = {
    "float32": ("float32", {}, {}),
    "float16": ("float16", {}, {}),
    "dynamic": ("dynamic", {}, {}),
    "int8_cpu": ("int8_cpu", {}, {}),
    "int8_cpu recipe fc_bmm_int8 (BATCH_MATMUL int8, symmetric)": ("int8_cpu", {}, {"quantizer_recipe": "fc_bmm_int8"}),
    "int8_cpu recipe all_int8 (every op int8, BATCH_MATMUL symmetric)": ("int8_cpu", {}, {"quantizer_recipe": "all_int8"}),
    "int8": ("int8", {}, {}),
    "int8 BATCH_MATMUL attention (unfold_batchmatmul=False)": ("int8", {}, {"unfold_batchmatmul": False}),
    "int8 gelu=sigmoid": ("int8", {"gelu": "sigmoid"}, {}),
    "int8 attention=per_head": ("int8", {"attention": "per_head"}, {}),
    "uint8": ("uint8", {}, {}),
    "int16x8": ("int16x8", {}, {}),
    "edgetpu": ("edgetpu", {}, {}),
}

TIMM_CODE = """
import json, sys, time, torch
sys.path.insert(0, {here!r})
from train_throughput import _torchvision_schemas  # lets timm import beside the CPU torch wheel
try:
    import torchvision  # noqa: F401
except RuntimeError:
    _torchvision_schemas()
import timm
torch.set_num_threads({threads})
model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
x = torch.randn(1, 3, 224, 224)
with torch.inference_mode():
    for _ in range({warmup}):
        model(x)
    times = []
    for _ in range({runs}):
        start = time.perf_counter(); model(x); times.append((time.perf_counter() - start) * 1e3)
times.sort()
print(json.dumps({{"p50_ms": times[len(times) // 2], "p90_ms": times[int(len(times) * 0.9)],
                  "mean_ms": sum(times) / len(times), "torch": torch.__version__, "timm": timm.__version__}}))
"""


def _keras_hub_model():
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768,
    )
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=1000, preprocessor=None)


def _convert_keras_hub(model, path, mode, images):
    """KerasHub's model through the same converter settings (builtin ops, batch-1 signature)."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", lambda x: model(x, training=False),
                             input_signature=[tf.TensorSpec((1, 224, 224, 3), tf.float32, name="images")])
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "int8":
            converter.representative_dataset = lambda: ([image[None]] for image in images)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        data = converter.convert()
    with open(path, "wb") as handle:
        handle.write(data)


def _profile(files, threads, runs, warmup, rounds):
    """Latency of every file plus its op profile: the graph's ops and the XNNPACK partition count.

    With ``rounds`` > 1 the files take turns (``runs`` invokes each per round) and each row reports
    the median over rounds of its p50, so a change of load during the run hits every row alike.
    """
    import numpy as np

    from keras_vit.tflite.inspection import inspect_file
    from keras_vit.tflite.runtime import LiteRTModel

    models = {name: LiteRTModel(path, num_threads=threads) for name, path in files.items()}
    per_round = {name: [] for name in files}
    for _ in range(rounds):
        for name, model in models.items():
            per_round[name].append(model.benchmark(runs=runs, warmup=warmup))
    rows = {}
    for name, path in files.items():
        results = per_round[name]
        row = {key: float(np.median([r[key] for r in results])) for key in ("p50_ms", "p90_ms", "mean_ms", "min_ms")}
        model = models[name]
        row.update(round_p50_ms=[r["p50_ms"] for r in results], size_mib=os.path.getsize(path) / 2**20,
                   delegate_partitions=model.delegate_partitions(), outside_xnnpack=model.ops_outside_delegate(),
                   graph_ops=dict(sorted(inspect_file(path).op_counts().items())))
        rows[name] = row
        print(f"{name:<40} p50 {row['p50_ms']:7.2f} ms (rounds {', '.join(f'{v:.1f}' for v in row['round_p50_ms'])})"
              f"  {row['size_mib']:5.1f} MiB  {row['delegate_partitions']:3d} partitions  "
              f"outside XNNPACK: {row['outside_xnnpack']}", flush=True)
    return rows


def _cpu() -> str:
    """The CPU's model name and the flags that decide int8 speed (AVX2, AVX-512, VNNI; asimddp on ARM)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    shown = sorted(f for f in flags if f.startswith(("avx", "amx", "asimd", "sve", "i8mm")) or "vnni" in f)
    return f"{fields.get('model name', fields.get('CPU part', '?'))}; {' '.join(shown)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=None, help="names of our variants to run")
    parser.add_argument("--skip-references", action="store_true", help="skip KerasHub and timm")
    parser.add_argument("--rounds", type=int, default=1, help="rounds in which the files take turns (median p50)")
    parser.add_argument("--keep", default=None, help="folder for the exported files (reused when present)")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "tflite_latency.json"))
    args = parser.parse_args(argv)

    load_at_start = os.getloadavg()
    import numpy as np

    import keras_vit
    from keras_vit.datasets import cifar10_dir
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.atomic import atomic_write
    from keras_vit.tflite.convert import export_tflite
    from keras_vit.images import read_image_folder
    from keras_vit.tflite.modes import MODES

    pixels, _, _ = read_image_folder(cifar10_dir("train"), 224, limit=32, seed=7)
    images = Preprocessing(image_size=224).normalize(pixels)
    model = keras_vit.create_model("vit_tiny_patch16_224")
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        os.makedirs(tmp, exist_ok=True)
        files = {}
        for name in args.only or list(OURS):
            mode_name, formulation_changes, converter_changes = OURS[name]
            base = MODES[mode_name]
            variant = dataclasses.replace(base, formulation=dataclasses.replace(base.formulation, **formulation_changes),
                                          converter=dataclasses.replace(base.converter, **converter_changes))
            path = os.path.join(tmp, "ours_" + "".join(c if c.isalnum() else "_" for c in name) + ".tflite")
            start = time.time()
            if not (args.keep and os.path.isfile(path)):
                export_tflite(model, path, mode=variant, calibration=images, calibration_size=len(images))
                print(f"exported ours {name} in {time.time() - start:.0f} s", flush=True)
            files[f"keras_vit {name}"] = path
        if not args.skip_references:
            hub = _keras_hub_model()
            for mode in ("float32", "dynamic", "int8"):
                path = os.path.join(tmp, f"hub_{mode}.tflite")
                _convert_keras_hub(hub, path, mode, images)
                print(f"exported KerasHub {mode}", flush=True)
                files[f"KerasHub ViT-Ti {mode}"] = path
        rows.update(_profile(files, args.threads, args.runs, args.warmup, args.rounds))
    if not args.skip_references:
        code = TIMM_CODE.format(threads=args.threads, runs=args.runs, warmup=args.warmup,
                                here=os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        rows["timm vit_tiny_patch16_224 (PyTorch eager)"] = json.loads(out.strip().splitlines()[-1])
        print(f"timm eager p50 {rows['timm vit_tiny_patch16_224 (PyTorch eager)']['p50_ms']:.2f} ms")
    load = os.getloadavg()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "threads": args.threads, "runs": args.runs, "warmup": args.warmup, "rounds": args.rounds,
            "loadavg_at_end": load, "cpu": _cpu(),
            "loadavg_at_start": load_at_start,
            "note": "compare rows within this run (a shared 2-core VM; load average recorded)",
            "command": "python benchmarks/tflite_latency.py " + " ".join(argv or sys.argv[1:])}
    atomic_write(args.output, json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print("\n| model | p50 ms | p90 ms | MiB | XNNPACK partitions | ops outside XNNPACK |\n|---|---|---|---|---|---|")
    for name, r in rows.items():
        outside = ", ".join(f"{op} {n}" for op, n in r.get("outside_xnnpack", {}).items()) or "-"
        print(f"| {name} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r.get('size_mib', float('nan')):.1f} | "
              f"{r.get('delegate_partitions', '-')} | {outside} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
