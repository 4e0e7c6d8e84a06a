"""The GPU check: keras_vit on Keras' JAX backend beside timm (torch.compile + AMP), one table, one JSON file.

    bash benchmarks/gpu_check.sh            # on the lent GPU (the .sh carries Keras as wheels)
    bash benchmarks/gpu_check.sh --tiny     # the same plan with tiny sizes on this CPU: a dry run, not a result

Rows, in the order the deadline (``--budget`` seconds, 450 by default) lets them run:

1. ``checks``: one fit step, one mixed-precision step against float32, fused against explicit attention;
2. training throughput and peak memory of ViT-B/16 at 224, batch 128, float32 / bfloat16, fused attention
   on and off, then timm's VisionTransformer (same widths) with ``torch.compile`` and bfloat16 autocast;
3. the largest batch that fits (bfloat16, fused), keras_vit then timm at that batch;
4. inference throughput of B/16 and L/16 at batch 256 (bfloat16), both libraries;
5. cost growth: B/16 at 224, 384 and 512 (197, 577, 1025 tokens), batch-1 latency and a training step's
   time and peak memory, fused and explicit.

Each row runs in its own process (a fresh peak-memory counter; an out-of-memory error ends only that row).
A row the deadline cuts is written as ``skipped``. On a CPU the memory column is the process's peak RSS.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = {"model": "vit_base_patch16_224", "large": "vit_large_patch16_224", "batch": 128, "larger": (192, 256, 384),
        "infer_batch": 256, "sizes": (224, 384, 512), "growth_batch": 32, "steps": 10, "compile": True}
TINY = {"model": "vit_test", "large": "vit_test", "batch": 4, "larger": (8, 16),
        "infer_batch": 8, "sizes": (32, 48, 64), "growth_batch": 4, "steps": 2,
        "compile": False}  # torch.compile takes ~1 min a model on this CPU: the dry run compiles one timm row


def _timed(step, steps: int) -> float:
    """Median seconds of ``step()`` (which must wait for the device) after two warm-up calls."""
    step(), step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _host_peak_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _keras_peak_gib():
    import jax

    stats = jax.devices()[0].memory_stats()
    return stats["peak_bytes_in_use"] / 2**30 if stats else _host_peak_gib()


def run_checks(job) -> dict:
    """One fit step; one mixed-precision step close to float32; fused and explicit attention agreeing."""
    import keras

    import keras_vit
    from keras_vit.backend import accelerator, mixed_policy
    from keras_vit.layers import MultiHeadSelfAttention, export_formulation

    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 10
    keras.utils.set_random_seed(0)
    start = keras_vit.create_model("vit_test").get_weights()
    losses, weights = {}, {}
    for policy in ("float32", mixed_policy()):
        model = keras_vit.create_model("vit_test", dtype=None if policy == "float32" else policy)
        model.set_weights(start)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses[policy] = float(model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0])
        weights[policy] = np.concatenate([(np.asarray(w, "float32") - s).ravel()
                                          for w, s in zip(model.get_weights(), start)])
    policy = mixed_policy()
    update_error = np.linalg.norm(weights[policy] - weights["float32"]) / np.linalg.norm(weights["float32"])
    tokens = np.random.default_rng(1).normal(size=(4, 197, 768)).astype("float32")
    agreement = {}
    for dtype in ("float32", "mixed_bfloat16", "mixed_float16"):
        layer = MultiHeadSelfAttention(12, dtype=None if dtype == "float32" else dtype)
        outputs = {}
        for form in ("batch_matmul", "fused"):
            with export_formulation(attention=form):
                outputs[form] = keras.ops.convert_to_numpy(keras.ops.cast(layer(tokens), "float32"))
        agreement[dtype] = float(np.abs(outputs["fused"] - outputs["batch_matmul"]).max())
    return {"device": list(accelerator()), "fit_loss": losses["float32"], "mixed_policy": policy,
            "mixed_loss_rel_error": abs(losses[policy] - losses["float32"]) / losses["float32"],
            "mixed_update_rel_error": float(update_error), "fused_vs_explicit_max_abs": agreement}


def run_keras(job) -> dict:
    """Training or inference throughput of one keras_vit configuration on the JAX backend."""
    import jax
    import keras

    import keras_vit
    from keras_vit.layers import export_formulation

    policy = job["precision"]
    model = keras_vit.create_model(job["model"], dtype=None if policy == "float32" else policy,
                                   **job.get("overrides", {}))
    batch = job["batch"]
    x = jax.device_put(np.random.default_rng(0).normal(size=(batch,) + tuple(model.input_shape[1:])).astype("float32"))
    y = jax.device_put(np.arange(batch) % model.num_classes)
    with export_formulation(attention=job["attention"]):  # read when the step is traced
        if job["mode"] == "train":
            model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            seconds = _timed(lambda: model.train_on_batch(x, y), job["steps"])
        else:
            seconds = _timed(lambda: model.predict_on_batch(x), job["steps"])
    return {"ms": 1000 * seconds, "images_per_s": batch / seconds, "peak_gib": _keras_peak_gib()}


def run_timm(job) -> dict:
    """The same configuration as timm's VisionTransformer, ``torch.compile`` and bfloat16 autocast."""
    import torch
    from timm.models.vision_transformer import VisionTransformer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dims = job["dims"]
    model = VisionTransformer(img_size=dims["image_size"], patch_size=dims["patch_size"], embed_dim=dims["hidden_dim"],
                              depth=dims["num_layers"], num_heads=dims["num_heads"], num_classes=dims["num_classes"],
                              mlp_ratio=dims["mlp_dim"] / dims["hidden_dim"]).to(device)
    compiled = torch.compile(model) if job.get("compile", True) else model
    batch = job["batch"]
    x = torch.randn(batch, 3, dims["image_size"], dims["image_size"], device=device)
    y = torch.arange(batch, device=device) % dims["num_classes"]
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=job["precision"] != "float32")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train():
        with autocast:
            loss = torch.nn.functional.cross_entropy(compiled(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    def infer():
        with torch.no_grad(), autocast:
            compiled(x)
        if device == "cuda":
            torch.cuda.synchronize()

    if job["mode"] == "infer":
        model.eval()
    seconds = _timed(train if job["mode"] == "train" else infer, job["steps"])
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else _host_peak_gib()
    return {"ms": 1000 * seconds, "images_per_s": batch / seconds, "peak_gib": peak}


RUNNERS = {"checks": run_checks, "keras": run_keras, "timm": run_timm}


def _plan(sizes: dict, dims) -> list:
    base = {"steps": sizes["steps"], "model": sizes["model"], "overrides": {}}
    rows = [{"library": "checks", "row": "model checks on the device"}]
    for precision in ("float32", "mixed_bfloat16"):
        for attention in ("fused", "batch_matmul"):
            rows.append({**base, "library": "keras", "mode": "train", "batch": sizes["batch"],
                         "precision": precision, "attention": attention})
    for precision in ("float32", "amp_bfloat16"):
        rows.append({**base, "library": "timm", "mode": "train", "batch": sizes["batch"], "precision": precision,
                     "dims": dims(sizes["model"]), "compile": sizes["compile"] or precision == "float32"})
    rows.append({"library": "largest", "sizes": sizes})
    for name in (sizes["model"], sizes["large"]):
        common = {**base, "model": name, "mode": "infer", "batch": sizes["infer_batch"]}
        rows.append({**common, "library": "keras", "precision": "mixed_bfloat16", "attention": "fused"})
        rows.append({**common, "library": "timm", "precision": "amp_bfloat16", "dims": dims(name),
                     "compile": sizes["compile"]})
    for size in sizes["sizes"]:
        grown = {**base, "overrides": {"image_size": size}, "library": "keras", "precision": "mixed_bfloat16"}
        rows.append({**grown, "mode": "infer", "batch": 1, "attention": "fused"})
        for attention in ("fused", "batch_matmul"):
            rows.append({**grown, "mode": "train", "batch": sizes["growth_batch"], "attention": attention})
    return rows


def _run_job(job, deadline, torch_python) -> dict:
    left = deadline - time.monotonic()
    if left < 10:
        return {"status": "skipped", "reason": "time budget"}
    python = torch_python if job["library"] == "timm" else sys.executable
    try:
        out = subprocess.run([python, os.path.abspath(__file__), "--job", json.dumps(job)], capture_output=True,
                             text=True, timeout=left)
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "reason": "time budget (killed)"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        oom = "RESOURCE_EXHAUSTED" in out.stderr or "out of memory" in out.stderr.lower()
        return {"status": "oom" if oom else "error", "reason": tail[0][:300]}
    return {"status": "ok", **json.loads(lines[-1])}


def _label(job) -> str:
    if job["library"] == "checks":
        return job["row"]
    size = job.get("overrides", {}).get("image_size")
    name = job.get("model", "") + (f"@{size}" if size else "")
    form = f" attn={job['attention']}" if "attention" in job else (" compile" if job.get("compile", True) else " eager")
    return f"{job['library']:5} {job['mode']:5} {name} b{job['batch']} {job['precision']}{form}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="keras_vit on a GPU beside timm: one table, one JSON file.")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a CPU dry run of the whole plan")
    parser.add_argument("--budget", type=float, help="seconds for all rows (default 450; --tiny 420)")
    parser.add_argument("--torch-python", default=sys.executable, help="the Python that has torch and timm")
    parser.add_argument("--output", help="the JSON file (default benchmarks/results/gpu_<device>_<date>.json)")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        job = json.loads(args.job)
        print(json.dumps(RUNNERS[job["library"]](job)))
        return 0

    sys.path.insert(0, os.path.dirname(HERE))
    from keras_vit.registry import variant_config

    sizes = TINY if args.tiny else FULL
    args.budget = args.budget or (420.0 if args.tiny else 450.0)
    deadline = time.monotonic() + args.budget
    rows = []
    print(f"{'row':62} {'step':>12} {'throughput':>15} {'peak memory':>11}", flush=True)
    for job in _plan(sizes, variant_config):
        if job["library"] == "largest":
            rows.extend(_largest(job["sizes"], deadline, args.torch_python, variant_config))
            continue
        rows.append({"row": _label(job), "job": job, **_run_job(job, deadline, args.torch_python)})
        _print_row(rows[-1])
    device = _device_name()
    report = {"label": "CPU DRY RUN with tiny sizes: exercises the plan, measures nothing" if args.tiny
              else "GPU measurement", "device": device, "host": platform.node(), "python": platform.python_version(),
              "budget_s": args.budget, "seconds": round(args.budget - (deadline - time.monotonic()), 1), "rows": rows}
    slug = "".join(c if c.isalnum() else "_" for c in device.lower()).strip("_")
    name = "gpu_check_dryrun_cpu.json" if args.tiny else f"gpu_{slug}_{time.strftime('%Y%m%d_%H%M')}.json"
    path = args.output or os.path.join(HERE, "results", name)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    for target in [path] + ([os.path.join(os.environ["OUT"], os.path.basename(path))] if os.environ.get("OUT") else []):
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    print(f"{report['label']}; {device}; {report['seconds']} s; wrote {path}")
    return 0 if all(row["status"] in ("ok", "skipped", "oom") for row in rows) else 1


def _largest(sizes, deadline, torch_python, variant_config) -> list:
    """The largest batch of ``sizes['larger']`` that trains (bfloat16, fused), then timm at that batch."""
    base = {"library": "keras", "mode": "train", "model": sizes["model"], "precision": "mixed_bfloat16",
            "attention": "fused", "steps": sizes["steps"], "overrides": {}}
    rows, fits = [], None
    for batch in sizes["larger"]:
        job = {**base, "batch": batch}
        rows.append({"row": _label(job), "job": job, **_run_job(job, deadline, torch_python)})
        _print_row(rows[-1])
        if rows[-1]["status"] != "ok":
            break
        fits = batch
    if fits:
        job = {**base, "library": "timm", "precision": "amp_bfloat16", "batch": fits,
               "dims": variant_config(sizes["model"]), "compile": sizes["compile"]}
        job.pop("attention")
        rows.append({"row": _label(job), "job": job, **_run_job(job, deadline, torch_python)})
        _print_row(rows[-1])
    return rows


def _print_row(row):
    if row["status"] != "ok":
        print(f"{row['row']:62} {row['status']}: {row.get('reason', '')}", flush=True)
    elif "ms" in row:
        print(f"{row['row']:62} {row['ms']:9.1f} ms {row['images_per_s']:9.1f} img/s {row['peak_gib']:7.2f} GiB",
              flush=True)
    else:
        print(f"{row['row']:62} " + json.dumps({k: v for k, v in row.items() if k not in ("row", "job", "status")}),
              flush=True)


def _device_name() -> str:
    out = subprocess.run([sys.executable, "-c", "import jax; print(jax.devices()[0].device_kind)"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
