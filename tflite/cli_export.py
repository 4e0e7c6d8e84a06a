"""``keras-vit export MODEL OUTPUT --mode int8 --calibration FOLDER``: TFLite or ONNX, then verified.

``MODEL`` is a ``.keras`` file, a pretrained checkpoint name, or a registered variant name
(random weights: for trying the pipeline). With ``--mode all`` every TFLite mode is written as ``OUTPUT_<mode>.tflite``. After each
export the verifier runs on held-out images (``--verify-images``) and its table is printed; the
command exits 1 when a check fails.
"""

import os

from keras_vit.layers.formulation import ATTENTIONS, GELUS
from keras_vit.tflite.metadata import OUTPUTS
from keras_vit.tflite.modes import MODES


def add_arguments(parser):
    parser.add_argument("model", help="a .keras file or a registered variant name (e.g. vit_test)")
    parser.add_argument("output", help="output file (.tflite or .onnx); with --mode all, the stem of each file")
    parser.add_argument("--format", choices=("tflite", "onnx"), default=None,
                        help="default: from OUTPUT's extension")
    parser.add_argument("--mode", default="int8", choices=sorted(MODES) + ["all"], help="TFLite mode (default int8)")
    parser.add_argument("--calibration", default=None,
                        help="image folder, or .npy of uint8 pixels / normalized float32 images (int modes)")
    parser.add_argument("--calibration-size", type=int, default=300, help="calibration images used (default 300)")
    parser.add_argument("--labels", default=None, help="text file with one class name a line, or a comma list")
    parser.add_argument("--verify-images", default=None, help="held-out image folder for the parity check")
    parser.add_argument("--verify-count", type=int, default=200, help="held-out images compared (default 200)")
    parser.add_argument("--attention", choices=ATTENTIONS, default=None,
                        help="attention form of the traced graph (default: the mode's formulation)")
    parser.add_argument("--gelu", choices=GELUS, default=None,
                        help="GELU form of the traced graph (default: the mode's formulation)")
    parser.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weights")
    parser.add_argument("--outputs", choices=OUTPUTS, default="probabilities",
                        help="what the file outputs: probabilities (the graph ends in softmax; default) or logits")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads for verification")


def _labels(value):
    if value is None:
        return None
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    return [part.strip() for part in value.split(",")]


def _calibration(value):
    if value is None or os.path.isdir(value):
        return value
    if value.endswith((".npy", ".npz")) and os.path.isfile(value):
        import numpy as np

        data = np.load(value)
        return data[data.files[0]] if hasattr(data, "files") else data
    raise ValueError(f"--calibration must be an image folder or a .npy/.npz file; received {value!r}.")


def load_model(value):
    """A ``.keras`` file, a pretrained checkpoint name, or a registered variant (random weights)."""
    from keras_vit.serialization import open_model

    return open_model(value, what="the exported file")


def run(args) -> int:
    import dataclasses

    fmt = args.format or ("onnx" if args.output.endswith(".onnx") else "tflite")
    model = load_model(args.model)
    labels = _labels(args.labels)
    verify_images = None
    if args.verify_images:
        from keras_vit.images import read_image_folder

        size, channels = tuple(model.input_shape[1:3]), model.input_shape[3]
        verify_images, verify_labels, _ = read_image_folder(args.verify_images, size, channels,
                                                            limit=args.verify_count, seed=1)
        verify_labels = verify_labels if (verify_labels >= 0).all() else None
    if fmt == "onnx":
        from keras_vit.tflite.onnx_export import export_onnx

        report = export_onnx(model, args.output, images=verify_images, labels=labels)
        for key, value in report.items():
            print(f"{key:<16} {value}")
        return 0 if report.get("ok", True) else 1

    from keras_vit.tflite.convert import export_tflite
    from keras_vit.tflite.verify import verify_tflite

    modes = sorted(MODES) if args.mode == "all" else [args.mode]
    calibration = _calibration(args.calibration)
    failed, rows = 0, []
    for mode in modes:
        path = args.output
        if len(modes) > 1:
            path = f"{os.path.splitext(args.output)[0]}_{mode}.tflite"
        overrides = {k: v for k, v in (("attention", args.attention), ("gelu", args.gelu)) if v}
        formulation = dataclasses.replace(MODES[mode].formulation, **overrides)
        report = export_tflite(model, path, mode=mode, calibration=calibration, labels=labels,
                               calibration_size=args.calibration_size, formulation=formulation,
                               per_channel=False if args.per_tensor else None, outputs=args.outputs)
        print(f"wrote {report['path']} ({report['size_bytes'] / 1024:.1f} KiB, {report['outputs']}, with metadata) "
              f"and {report['contract_path']} in {report['seconds']:.1f} s")
        result = verify_tflite(path, model=model if verify_images is not None else None,
                               images=verify_images, labels=verify_labels if verify_images is not None else None,
                               num_threads=args.threads)
        print(result.table())
        failed += not result.ok
        if len(modes) > 1 and verify_images is not None:
            rows.append(_tradeoff_row(mode, path, result, args.threads))
    if rows:
        _plot_tradeoff(rows, f"{os.path.splitext(args.output)[0]}_tradeoff.png")
    return 1 if failed else 0


def _tradeoff_row(mode, path, result, threads) -> dict:
    from keras_vit.tflite.runtime import LiteRTModel

    latency = LiteRTModel(path, num_threads=threads).benchmark(runs=20)["p50_ms"]
    return {"mode": mode, "size_bytes": result.size_bytes, "latency_ms": latency,
            "top1": result.metrics.get("export_top1"), "agreement": result.metrics.get("top1_agreement")}


def _plot_tradeoff(rows, path):
    """Accuracy / size / latency of the modes just written (``keras-vit export --mode all --verify-images``)."""
    for row in rows:
        print(f"{row['mode']:<8} {row['size_bytes'] / 1024:8.1f} KiB {row['latency_ms']:8.3f} ms p50  "
              + (f"top-1 {row['top1']:.2%}" if row["top1"] is not None else f"agreement {row['agreement']:.2%}"))
    try:
        from keras_vit.explain.canvas import save_figure
        from keras_vit.explain.runs import plot_export_tradeoff
    except ImportError as error:
        print(f"note: no trade-off plot ({error})")
        return
    try:
        print(f"wrote {save_figure(plot_export_tradeoff(rows), path)}")
    except ImportError as error:  # matplotlib is an optional extra
        print(f"note: no trade-off plot: {error}")


