"""``keras-vit verify MODEL.tflite [--model MODEL.keras --images FOLDER]``: inspect and check a file.

Prints the op list, tensor dtypes, XNNPACK partitions and each check; with the Keras model and
held-out images, the parity with Keras. Exits 1 when a check fails.
"""


def add_arguments(parser):
    parser.add_argument("tflite", help="the .tflite file")
    parser.add_argument("--model", default=None, help="the .keras model it was exported from (parity check)")
    parser.add_argument("--images", default=None, help="held-out image folder (class subfolders give labels)")
    parser.add_argument("--count", type=int, default=200, help="images compared (default 200)")
    parser.add_argument("--mode", default=None, help="thresholds of this mode (default: from the contract)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--self-check", action="store_true",
                        help="on the device: compare XNNPACK with LiteRT's reference kernels on 8 images")


def run(args) -> int:
    if args.self_check:
        from keras_vit.tflite import selfcheck

        return selfcheck.run(args)
    from keras_vit.tflite.verify import verify_tflite

    model = images = labels = None
    if args.model:
        from keras_vit.tflite.cli_export import load_model

        model = load_model(args.model)
    if args.images:
        from keras_vit.images import read_image_folder
        from keras_vit.tflite.runtime import LiteRTModel

        p = LiteRTModel(args.tflite, num_threads=args.threads).preprocessing
        images, labels, _ = read_image_folder(args.images, p.image_size, p.channels, limit=args.count, seed=1)
        labels = labels if (labels >= 0).all() else None
    report = verify_tflite(args.tflite, model=model, images=images, labels=labels, mode=args.mode,
                           num_threads=args.threads)
    print(report.table())
    return 0 if report.ok else 1
