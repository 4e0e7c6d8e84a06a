"""The levers of a short CIFAR-10 run (issue 11, item 4): each one a time-budgeted run of cifar10_hour.

Every lever changes one thing in ``training/configs/cifar10_hour.py`` and trains from scratch with
``keras-vit train --time-budget MINUTES`` in its own subprocess, one after another (never two at
once: they share the two cores). Flip test-time augmentation needs no training: it re-evaluates the
baseline's model on the 10,000 test images and their mirror images. Results (top-1 on all test
images, steps, seconds, the budget plan) go to ``benchmarks/results/cifar10_levers.json``.

Usage (a quiet machine; ~15 levers x MINUTES):
    python benchmarks/cifar10_levers.py --minutes 8
    python benchmarks/cifar10_levers.py --smoke            # every lever for 8 steps on 512 images (plumbing)
    python benchmarks/cifar10_levers.py --only baseline,pool_token --minutes 8
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

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "cifar10_levers.json")

# lever -> (what it tests, config changes; "model_overrides" entries merge into the config's)
LEVERS = {
    "baseline": ("cifar10_hour as it is", {}),
    "stem_conv3x1": ("one-conv tokenizer: 16x16 tokens (4x the sequence)",
                     {"model_overrides": {"stem": {"filters": [128]}}}),
    "stem_none_patch4": ("plain ViT, 4x4 image patches (no stem)", {"model_overrides": {"stem": None, "patch_size": 4}}),
    "stem_conv3x2_patch2": ("two-conv stem, 2x2 patches of its map (4x4 tokens)", {"model_overrides": {"patch_size": 2}}),
    "width_192": ("wider: D192, MLP 384", {"model_overrides": {"hidden_dim": 192, "num_heads": 3, "mlp_dim": 384}}),
    "depth_2": ("shallower: 2 blocks (CCT-2's depth, more epochs in the budget)", {"model_overrides": {"num_layers": 2}}),
    "depth_6": ("deeper: 6 blocks", {"model_overrides": {"num_layers": 6}}),
    "pool_token": ("[class] token instead of mean pooling", {"model_overrides": {"pooling": "token"}}),
    "pos_sincos": ("fixed 2-D sin-cos positions instead of learned", {"model_overrides": {"position_embedding": "sincos"}}),
    "no_label_smoothing": ("label smoothing 0 (baseline 0.1)", {"label_smoothing": 0.0}),
    "randaugment_light": ("RandAugment N=1, M=5", {"augment": {"rand_augment_ops": 1, "rand_augment_magnitude": 5.0}}),
    "mixup_cutmix": ("Mixup 0.8 / CutMix 1.0, one per batch", {"augment": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0}}),
    "batch_64": ("batch 64 (lr scaled linearly from 1e-3 at 128)", {"batch_size": 64}),
    "batch_256": ("batch 256 (lr scaled linearly)", {"batch_size": 256}),
    "warmup_2": ("2 warmup epochs (baseline 0.5)", {"warmup_epochs": 2.0}),
    "floor_0": ("cosine to 0 (baseline floor 1e-5)", {"min_learning_rate": 0.0}),
    "weight_decay_0": ("no weight decay", {"weight_decay": 0.0}),
    "weight_decay_0.1": ("weight decay 0.1 (x lr in Keras' AdamW, as in PyTorch's)", {"weight_decay": 0.1}),
}
# Levers the training loop cannot run yet, kept in the table with the reason.
NOT_YET = {
    "ema": "an exponential moving average of the weights needs a shadow copy updated in training/loop.py's step",
}


def _merged(base: dict, change: dict) -> dict:
    config = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _config_file(directory: str, config: dict) -> str:
    path = os.path.join(directory, "lever_config.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('"""A lever of benchmarks/cifar10_levers.py (generated).\n\nCommand: keras-vit train\n'
                     'Hardware: see the script. Time: the budget. Accuracy: in the results."""\nimport json\n\n\n'
                     f'def get_config(runlocal=False):\n    return json.loads({json.dumps(json.dumps(config))})\n')
    return path


def run_lever(name: str, minutes: float, smoke: bool, out_root: str) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "training", "configs"))
    import cifar10_hour

    description, change = LEVERS[name]
    config = _merged(cifar10_hour.get_config(runlocal=smoke), change)
    run_dir = os.path.join(out_root, name)
    os.makedirs(run_dir, exist_ok=True)
    command = [sys.executable, "-m", "keras_vit.cli", "train", "--config", _config_file(run_dir, config),
               "--output-dir", os.path.join(run_dir, "run"), "--no-progress",
               "--time-budget", "0" if smoke else str(minutes)]
    if smoke:
        command += ["--smoke", "--no-jit"]  # seconds of plumbing: XLA's compilation would be most of it
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    entry = {"description": description, "change": change, "wall_s": round(time.time() - started, 1),
             "returncode": result.returncode}
    if result.returncode:
        entry["error"] = (result.stdout + result.stderr)[-1500:]
        return entry
    with open(os.path.join(run_dir, "run", "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    entry.update({key: summary.get(key) for key in ("eval_accuracy", "best_eval_accuracy", "steps", "seconds",
                                                     "images_per_s_last_epoch", "time_budget")})
    entry["model_path"] = os.path.join(run_dir, "run", "model.keras")
    return entry


def flip_tta(model_path: str, limit=None) -> dict:
    """Top-1 of ``model_path`` on the CIFAR-10 test images, plain and averaged with their mirror images."""
    import numpy as np
    from PIL import Image

    import keras_vit
    from keras_vit.datasets import CIFAR10_LABELS, cifar10_dir
    from keras_vit.images import scan_image_folder

    model = keras_vit.load_model(model_path)
    listing = scan_image_folder(cifar10_dir("test"), CIFAR10_LABELS)
    every = max(len(listing.paths) // limit, 1) if limit else 1  # the listing is sorted by class: spread a subset
    paths, labels = listing.paths[::every][:limit], np.asarray(listing.labels[::every][:limit])
    plain = flipped = 0
    for start in range(0, len(paths), 500):
        pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths[start:start + 500]])
        x = model.preprocessing.normalize(pixels)
        logits = np.asarray(model.predict(x, batch_size=250, verbose=0))
        mirrored = np.asarray(model.predict(x[:, :, ::-1], batch_size=250, verbose=0))
        truth = labels[start:start + 500]
        plain += int((logits.argmax(-1) == truth).sum())
        flipped += int(((logits + mirrored).argmax(-1) == truth).sum())
    return {"images": len(paths), "top1": plain / len(paths), "top1_flip_tta": flipped / len(paths)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget of each lever's run")
    parser.add_argument("--smoke", action="store_true", help="each lever for seconds (checks the plumbing)")
    parser.add_argument("--only", default="", help="comma-separated lever names")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(LEVERS)
    unknown = sorted(set(names) - set(LEVERS))
    if unknown:
        parser.error(f"unknown levers {unknown}; known: {sorted(LEVERS)}")
    from keras_vit.atomic import atomic_write

    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "minutes": args.minutes,
               "smoke": args.smoke, "machine": f"{platform.processor() or platform.machine()}, "
                                                f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
               "levers": {}, "not_yet": NOT_YET}
    with tempfile.TemporaryDirectory(prefix="levers_") as out_root:
        for name in names:
            entry = run_lever(name, args.minutes, args.smoke, out_root)
            if name == "baseline" and entry["returncode"] == 0:
                entry["flip_tta"] = flip_tta(entry["model_path"], limit=200 if args.smoke else None)
            entry.pop("model_path", None)
            results["levers"][name] = entry
            print(f"{name:22s} top-1 {entry.get('eval_accuracy')}  steps {entry.get('steps')}  "
                  f"{entry['wall_s']} s" + ("  FAILED" if entry["returncode"] else ""), flush=True)
            atomic_write(args.output, json.dumps(results, indent=2))
    print(f"wrote {args.output}")
    return 0 if all(e["returncode"] == 0 for e in results["levers"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
