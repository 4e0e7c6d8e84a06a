"""``keras-vit benchmark MODEL.tflite``: batch-1 latency (warm-up, p50/p90) like LiteRT's benchmark_model."""


def add_arguments(parser):
    parser.add_argument("tflite", nargs="+", help=".tflite files")
    parser.add_argument("--runs", type=int, default=50, help="timed invocations (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed invocations first (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")


def run(args) -> int:
    import json
    import os
    import platform
    import sys
    import time

    from keras_vit.atomic import atomic_write
    from keras_vit.tflite.runtime import LiteRTModel

    rows = []
    print(f"{'model':<40} {'KiB':>8} {'XNNPACK':>7} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8}")
    for path in args.tflite:
        try:
            model = LiteRTModel(path, num_threads=args.threads)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        result = model.benchmark(runs=args.runs, warmup=args.warmup)
        result.update(path=path, size_bytes=os.path.getsize(path), delegate_partitions=model.delegate_partitions())
        rows.append(result)
        print(f"{os.path.basename(path):<40} {result['size_bytes'] / 1024:>8.1f} {result['delegate_partitions']:>7} "
              f"{result['p50_ms']:>8.2f} {result['p90_ms']:>8.2f} {result['mean_ms']:>8.2f}")
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.machine(),
                "cpus": os.cpu_count(), "threads": args.threads}
        atomic_write(args.json, json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0
