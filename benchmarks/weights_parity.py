"""Full-size parity of keras_vit.weights against timm, and how long a load takes.

For each variant, a subprocess builds timm's model at 224x224 with random
weights (1000 classes), saves it as safetensors and records timm's logits on
real CIFAR-10 test images resized to 224 (bicubic); this process loads the
file with ``keras_vit.weights.load_weights`` and compares logits.

Usage (from the repository root, test extra installed):
    python benchmarks/weights_parity.py                  # S/16, B/16
    python benchmarks/weights_parity.py --variants L/16  # ViT-L: ~1.2 GB checkpoint
Writes benchmarks/results/weights_parity.md (date, machine, load, table); RESULTS.md quotes it.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

TIMM = {"S/16": "vit_small_patch16_224", "B/16": "vit_base_patch16_224", "L/16": "vit_large_patch16_224",
        "Ti/16": "vit_tiny_patch16_224", "B/32": "vit_base_patch32_224"}
REFERENCE = """
import os, sys, numpy as np, torch, timm
from safetensors.torch import save_file
name, folder = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = timm.create_model(name, pretrained=False).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(folder, "model.safetensors"))
with torch.no_grad():
    x = torch.from_numpy(np.load(os.path.join(folder, "x.npy"))).permute(0, 3, 1, 2)
    np.save(os.path.join(folder, "logits.npy"), model(x).numpy())
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["S/16", "B/16"], choices=sorted(TIMM))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "weights_parity.md"))
    args = parser.parse_args()

    import keras_vit
    from keras_vit.datasets import CIFAR10_LABELS, cifar10_dir
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.weights import load_weights
    from PIL import Image

    root = cifar10_dir("test")
    if root is None:
        sys.exit("The shared CIFAR-10 archives are absent (set KERAS_VIT_DATA).")
    files = [os.path.join(root, c, sorted(os.listdir(os.path.join(root, c)))[0]) for c in CIFAR10_LABELS]
    images = np.stack([np.asarray(Image.open(f).convert("RGB").resize((224, 224), Image.BICUBIC))
                       for f in files[: args.images]])
    rows = []
    for variant in args.variants:
        with tempfile.TemporaryDirectory() as folder:
            np.save(os.path.join(folder, "x.npy"), Preprocessing(224).normalize(images))
            subprocess.run([sys.executable, "-c", REFERENCE, TIMM[variant], folder], check=True)
            size = os.path.getsize(os.path.join(folder, "model.safetensors")) / 2**20
            model = keras_vit.create_model(variant)
            start = time.perf_counter()
            report = load_weights(model, os.path.join(folder, "model.safetensors"))
            seconds = time.perf_counter() - start
            logits = np.asarray(model.predict(report.preprocessing.normalize(images), verbose=0))
            diff = float(np.abs(logits - np.load(os.path.join(folder, "logits.npy"))).max())
            agree = float((logits.argmax(-1) == np.load(os.path.join(folder, "logits.npy")).argmax(-1)).mean())
        rows.append((variant, TIMM[variant], f"{size:.0f}", f"{seconds:.2f}", f"{diff:.2e}", f"{agree:.2f}"))
        print(" | ".join(rows[-1]), flush=True)

    load = os.getloadavg()
    header = ("variant", "timm model", "checkpoint MiB", "load_weights s", "max abs logit diff", "top-1 agreement")
    lines = [
        "# keras_vit.weights: full-size parity with timm",
        "",
        f"Date: {datetime.date.today()}; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}; load average at the end {load[0]:.1f} (other jobs shared the CPUs).",
        f"Command: `python benchmarks/weights_parity.py --variants {' '.join(args.variants)}`; "
        f"{args.images} real CIFAR-10 test images resized to 224 (bicubic), random timm weights (std 0.02 added), "
        f"float32.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ] + ["| " + " | ".join(row) + " |" for row in rows]
    from keras_vit.atomic import atomic_write

    atomic_write(args.output, "\n".join(lines) + "\n")
    print(json.dumps({"written": args.output}))


if __name__ == "__main__":
    main()
