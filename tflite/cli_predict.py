"""``keras-vit predict MODEL.tflite IMAGE [IMAGE ...]``: top-k labels with LiteRT only (no TensorFlow)."""


def add_arguments(parser):
    parser.add_argument("tflite", help="the .tflite file (its .json contract beside it)")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--top-k", type=int, default=5, help="labels printed per image (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")


def run(args) -> int:
    import sys

    from keras_vit.tflite.runtime import LiteRTModel

    try:
        model = LiteRTModel(args.tflite, num_threads=args.threads)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            ranked = model.classify(path, top_k=args.top_k)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        print(path)
        for label, probability in ranked:
            print(f"  {probability:7.2%}  {label}")
    return status
