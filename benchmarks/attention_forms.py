"""Times one ViT attention layer's forward + backward in each form, on whatever Keras backend runs.

    KERAS_BACKEND=jax python benchmarks/attention_forms.py            # ViT-Ti/16: D 192, 3 heads, 197 tokens
    KERAS_BACKEND=torch python benchmarks/attention_forms.py --batch 64 --repeats 7

A one-layer model (``MultiHeadSelfAttention``) takes ``train_on_batch`` steps (SGD, MSE) traced in
``attention="batch_matmul"`` (explicit ``softmax(q k^T) v``) and in ``attention="fused"``
(``keras.ops.dot_product_attention``). Prints one JSON line: the median milliseconds a step
and the load average, which matters on a shared machine. The CPU numbers are in
benchmarks/RESULTS.md ("Fused attention on the CPU").
"""

import argparse
import json
import os
import statistics
import time

import numpy as np


def time_steps(model, x, y, steps: int, repeats: int) -> float:
    """Median seconds of one ``train_on_batch`` step over ``repeats`` runs of ``steps`` (after 2 warm-up steps)."""
    for _ in range(2):
        model.train_on_batch(x, y)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)  # returns the loss as a number: the step has finished
        runs.append((time.perf_counter() - start) / steps)
    return statistics.median(runs)


def attention_model(form: str, tokens: int, dim: int, heads: int, dtype=None):
    """A compiled one-layer model whose attention is traced in ``form``."""
    import keras

    from keras_vit.layers import MultiHeadSelfAttention

    inputs = keras.Input((tokens, dim))
    model = keras.Model(inputs, MultiHeadSelfAttention(heads, dtype=dtype)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    return model


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=197)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import keras

    from keras_vit.layers import export_formulation

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.tokens, args.dim)).astype("float32")
    y = rng.normal(size=x.shape).astype("float32")
    result = {"backend": keras.backend.backend(), "shape": [args.batch, args.tokens, args.dim], "heads": args.heads,
              "load_average_before": os.getloadavg()[0]}
    for form in ("batch_matmul", "fused"):
        with export_formulation(attention=form):  # read when train_on_batch traces the step
            model = attention_model(form, args.tokens, args.dim, args.heads)
            result[f"{form}_ms"] = round(1000 * time_steps(model, x, y, args.steps, args.repeats), 2)
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
