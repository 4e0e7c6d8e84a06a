"""Training throughput (images/s) of vit_cifar_patch4_32 against timm and KerasHub, in one run.

Same model everywhere: 32x32x3 images, patch 4 (64 patches + class token), D192, depth 6, 3 heads,
MLP 768, 10 classes, batch 128, AdamW, softmax cross-entropy. Each framework runs in its own
subprocess (one after the other, never together) on synthetic batches held in memory, so the
number is the train step itself, not the input pipeline; peak resident memory (ru_maxrss) is
that subprocess's.

* ours: keras_vit.training.loop.Trainer (our distributed step under OneDeviceStrategy), XLA.
* timm: timm.models.vision_transformer.VisionTransformer, PyTorch eager on CPU.
* keras_hub: keras_hub.models.ViTBackbone + Dense head on the class token, model.compile(jit_compile=True).

Usage:
    pip install torch==2.13.0 timm==1.0.31 keras-hub==0.32.0
    python benchmarks/train_throughput.py            # writes benchmarks/results/train_throughput.json
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

DIMS = dict(image_size=32, patch_size=4, hidden_dim=192, num_layers=6, num_heads=3, mlp_dim=768, num_classes=10)
RUNNERS = ("ours", "ours_no_xla", "ours_bf16", "timm", "keras_hub")
HERE = os.path.dirname(os.path.abspath(__file__))


def _threads(threads):
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _batch(batch):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch)
    return x, y


def _time(step, warmup, steps):
    """Wall seconds and process CPU seconds (user + sys, all threads) of ``steps`` calls after warmup."""
    for _ in range(warmup):
        step()
    cpu_start, start = os.times(), time.perf_counter()
    for _ in range(steps):
        step()
    wall, cpu_end = time.perf_counter() - start, os.times()
    return wall, (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)


def run_ours(batch, warmup, steps, threads, jit=True, precision="float32"):
    _threads(threads)
    import numpy as np
    import tensorflow as tf

    from keras_vit.factory import create_model
    from keras_vit.training import recipe
    from keras_vit.training.loop import Trainer

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = create_model("vit_cifar_patch4_32", dtype=None if precision == "float32" else precision)
        optimizer = recipe.make_optimizer(model, 1e-3)
    trainer = Trainer(model, optimizer, strategy, global_batch_size=batch, label_smoothing=0.1, jit_compile=jit)
    x, y = _batch(batch)
    data = tf.data.Dataset.from_tensors((x, np.eye(10, dtype="float32")[y])).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(data))
    return _time(lambda: float(trainer.train_step(iterator)["loss"]), warmup, steps)


def _torchvision_schemas():
    """Lets ``import timm`` work beside the CPU torch wheel.

    The only torchvision wheel in this index is a CUDA build whose C ops cannot load next to the
    CPU torch, and its import then stops at two fake-kernel registrations for ops it never
    defined. timm imports torchvision but its VisionTransformer never calls it; declaring the two
    op schemas lets the import finish. Nothing here runs in the timed step.
    """
    import torch

    if not hasattr(torch.ops, "torchvision") or not hasattr(torch.ops.torchvision, "nms"):
        library = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _torchvision_schemas.library = library


def run_timm(batch, warmup, steps, threads):
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        _torchvision_schemas()
    from timm.models.vision_transformer import VisionTransformer

    if threads:
        torch.set_num_threads(threads)
    model = VisionTransformer(img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0,
                              num_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x, y = _batch(batch)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(y)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss)

    return _time(step, warmup, steps)


def run_keras_hub(batch, warmup, steps, threads):
    _threads(threads)
    import keras
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=6, num_heads=3, hidden_dim=192, mlp_dim=768,
        dropout_rate=0.0, attention_dropout=0.0, layer_norm_epsilon=1e-6, use_mha_bias=True,
    )
    features = backbone.output[:, 0]
    model = keras.Model(backbone.input, keras.layers.Dense(10)(features))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05, global_clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    x, y = _batch(batch)
    return _time(lambda: float(model.train_on_batch(x, y)), warmup, steps)


def worker(name, batch, warmup, steps, threads):
    runner = {
        "ours": lambda: run_ours(batch, warmup, steps, threads),
        "ours_no_xla": lambda: run_ours(batch, warmup, steps, threads, jit=False),
        "ours_bf16": lambda: run_ours(batch, warmup, steps, threads, precision="mixed_bfloat16"),
        "timm": lambda: run_timm(batch, warmup, steps, threads),
        "keras_hub": lambda: run_keras_hub(batch, warmup, steps, threads),
    }[name]
    seconds, cpu_seconds = runner()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print("RESULT " + json.dumps({"name": name, "images_per_s": batch * steps / seconds,
                                  "step_ms": 1000 * seconds / steps, "peak_rss_mib": round(peak, 1),
                                  "images_per_cpu_s": batch * steps / max(cpu_seconds, 1e-9)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over all runners (best kept)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "train_throughput.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.batch, args.warmup, args.steps, args.threads)

    results = {}
    for round_ in range(args.repeats):
        for name in args.runners.split(","):
            load = os.getloadavg()[0]
            command = [sys.executable, __file__, "--worker", name, "--batch", str(args.batch), "--warmup",
                       str(args.warmup), "--steps", str(args.steps), "--threads", str(args.threads)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            result = json.loads(lines[-1][7:])
            result["load_before"] = round(load, 2)
            print(f"round {round_ + 1} {name:12s} {result['images_per_s']:7.1f} img/s  "
                  f"{result['images_per_cpu_s']:6.1f} img/CPU-s  {result['peak_rss_mib']:7.1f} MiB  "
                  f"(load {load:.2f})", flush=True)
            best = results.get(name)
            if best is None or result["images_per_s"] > best["images_per_s"]:
                results[name] = result
    print(f"\n{'runner':12s} {'img/s':>8s} {'ms/step':>8s} {'img/CPU-s':>10s} {'peak MiB':>9s} {'vs timm':>8s}")
    timm = results.get("timm", {}).get("images_per_s")
    for name, r in results.items():
        ratio = f"{r['images_per_s'] / timm:.2f}x" if timm else "-"
        print(f"{name:12s} {r['images_per_s']:8.1f} {r['step_ms']:8.1f} {r['images_per_cpu_s']:10.1f} "
              f"{r['peak_rss_mib']:9.1f} {ratio:>8s}")
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "model": DIMS, "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
        "repeats": args.repeats, "load_average_end": os.getloadavg(), "results": results,
        "note": "synthetic in-memory batches; each runner alone in its own subprocess; best of repeats",
    }
    from keras_vit.atomic import atomic_write

    atomic_write(args.output, json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
