"""Per-op LiteRT latency, float32 vs full int8, for the ops of one ViT-Ti/16 block at 224 (197 tokens).

Why is a full-integer ViT not faster than dynamic-range here? Each op of a ViT-Ti/16 block is
converted alone (float32, and full int8 with a 16-sample representative set), run batch 1 with
LiteRT (``ai_edge_litert``, XNNPACK, 2 threads), and reported with its p50 latency, the same
latency times the op's count in the whole model (12 blocks), and the ops XNNPACK left to LiteRT's
builtin kernels (``LiteRTModel.ops_outside_delegate``). Shapes are those of ViT-Ti/16: D 192,
3 heads of 64, MLP 768.

Command (no model, no data needed; ~1 min):
    python benchmarks/tflite_op_profile.py
Results: benchmarks/results/tflite_op_profile.json.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

N, D, HEADS, HEAD_DIM, MLP = 197, 192, 3, 64, 768


def _ops():
    """name: (function, input shapes, how many times the op runs in ViT-Ti/16)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w_up = tf.constant(rng.standard_normal((D, MLP)).astype("float32") / np.float32(np.sqrt(D)))
    w_down = tf.constant(rng.standard_normal((MLP, D)).astype("float32") / np.float32(np.sqrt(MLP)))

    def layer_norm(x):
        d = x - tf.reduce_mean(x, -1, keepdims=True)
        return d * tf.math.rsqrt(tf.reduce_mean(d * d, -1, keepdims=True) + 1e-6)

    return {
        "FULLY_CONNECTED 192->768 (weights)": (lambda x: tf.matmul(tf.reshape(x, (N, D)), w_up), [(1, N, D)], 12),
        "FULLY_CONNECTED 768->192 (weights)": (lambda x: tf.matmul(tf.reshape(x, (N, MLP)), w_down), [(1, N, MLP)], 12),
        "BATCH_MATMUL q k^T (3 heads)": (lambda q, k: tf.matmul(q, k, transpose_b=True),
                                         [(1, HEADS, N, HEAD_DIM)] * 2, 12),
        "BATCH_MATMUL attn v (3 heads)": (lambda a, v: tf.matmul(a, v), [(1, HEADS, N, N), (1, HEADS, N, HEAD_DIM)], 12),
        "FULLY_CONNECTED q k^T (one head, activation weights)": (
            lambda q, k: tf.matmul(tf.reshape(q, (N, HEAD_DIM)), tf.reshape(k, (N, HEAD_DIM)), transpose_b=True),
            [(1, 1, N, HEAD_DIM)] * 2, 36),
        "SOFTMAX (3 heads)": (lambda s: tf.nn.softmax(s, -1), [(1, HEADS, N, N)], 12),
        "GELU": (lambda x: tf.nn.gelu(x, approximate=False), [(1, N, MLP)], 12),
        "LayerNorm (MEAN, SUB, MUL, ADD, RSQRT)": (layer_norm, [(1, N, D)], 25),
    }


def _convert(function, shapes, integer):
    import numpy as np
    import tensorflow as tf

    specs = [tf.TensorSpec(shape, tf.float32) for shape in shapes]
    concrete = tf.function(function, input_signature=specs).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if integer:
        rng = np.random.default_rng(1)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.standard_normal(shape).astype("float32") for shape in shapes] for _ in range(16))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _time(path, threads, runs):
    import numpy as np

    from ai_edge_litert.interpreter import Interpreter

    from keras_vit.tflite.runtime import ops_outside_delegate, time_invoke

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return time_invoke(interpreter, runs, warmup=10)["p50_ms"], ops_outside_delegate(interpreter)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "tflite_op_profile.json"))
    args = parser.parse_args(argv)

    from keras_vit.atomic import atomic_write

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (function, shapes, count) in _ops().items():
            row = {"count_in_vit_ti16": count}
            for kind in ("float32", "int8"):
                path = os.path.join(tmp, f"op_{len(rows)}_{kind}.tflite")
                with open(path, "wb") as handle:
                    handle.write(_convert(function, shapes, kind == "int8"))
                p50, outside = _time(path, args.threads, args.runs)
                row[kind] = {"p50_us": round(p50 * 1e3, 1), "model_ms": round(p50 * count, 2), "outside_xnnpack": outside}
            rows[name] = row
            print(f"{name:<52} float {row['float32']['p50_us']:8.1f} us  int8 {row['int8']['p50_us']:8.1f} us  "
                  f"int8 outside XNNPACK: {row['int8']['outside_xnnpack'] or '-'}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "threads": args.threads, "runs": args.runs, "loadavg_at_end": os.getloadavg(),
            "command": "python benchmarks/tflite_op_profile.py " + " ".join(argv or sys.argv[1:])}
    atomic_write(args.output, json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print("\n| op (ViT-Ti/16 shapes) | x in model | float32 us | int8 us | int8 ms in model | int8 ops outside XNNPACK |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        outside = ", ".join(f"{op} {n}" for op, n in row["int8"]["outside_xnnpack"].items()) or "none"
        print(f"| {name} | {row['count_in_vit_ti16']} | {row['float32']['p50_us']} | {row['int8']['p50_us']} | "
              f"{row['int8']['model_ms']} | {outside} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
