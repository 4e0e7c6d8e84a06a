"""``keras-vit quickstart``: the whole path on a real data set that ships with scikit-learn.

Trains ``vit_digits_patch2_8`` on the 1,797 handwritten 8x8 digits bundled with
scikit-learn (no download), evaluates it, exports a full-integer int8
``.tflite`` calibrated on training images, runs that file with LiteRT and prints
accuracy, file size and latency for both.

Training is plain ``model.fit`` with keras_vit.training's recipe and callbacks: ``--time-budget 2`` trains
for two minutes with the learning rate following the clock; SIGTERM or Ctrl-C saves a backup and exits 75,
and the same command resumes.

Example:
    $ keras-vit quickstart --epochs 40 --output runs/quickstart
"""

import os
import sys
import time

from keras_vit.atomic import atomic_path
from keras_vit.datasets import DIGIT_LABELS, load_digits
from keras_vit.preprocessing import Preprocessing
from keras_vit.tflite.parity import compare_logits
from keras_vit.training.faults import RunStopped


def add_arguments(parser):
    parser.add_argument("--epochs", type=int, default=40, help="training epochs (default 40)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="wall-clock MINUTES for training instead of --epochs: the learning rate follows the clock")
    parser.add_argument("--output", default="runs/quickstart", help="folder for model.keras and model_int8.tflite")
    parser.add_argument("--seed", type=int, default=0)


def _train(args, train, test):
    """``model.fit`` with the training recipe and the run's callbacks (keras_vit.training): a non-finite loss
    stops it (exit 65), SIGTERM saves a backup in ``--output``/backup (exit 75; the same command resumes),
    ``--time-budget`` fits the learning rate to the clock."""
    import keras  # TensorFlow: loaded when the command runs, so `keras-vit quickstart --help` stays instant

    import keras_vit  # the model API (Keras), as above
    from keras_vit.training import NonFiniteGuard, Preemption, TimeBudget, recipe_for  # imports Keras, as above

    keras.utils.set_random_seed(args.seed)
    model = keras_vit.create_model("vit_digits_patch2_8")
    steps = args.epochs * -(-len(train[0]) // args.batch_size)
    callbacks = [NonFiniteGuard(), Preemption(os.path.join(args.output, "backup"))]
    epochs = args.epochs
    if args.time_budget:
        callbacks.insert(0, TimeBudget(args.time_budget, 2e-3, 0.0, warmup_steps=steps // 10, directory=args.output))
        epochs, steps = 10**6, None  # the clock ends the run
    model.compile(**recipe_for(model, learning_rate=2e-3, total_steps=steps, warmup_steps=(steps or 0) // 10))
    print(f"Training {model.name} ({model.count_params():,} parameters) on {len(train[0])} digits for "
          + (f"{args.time_budget:g} minutes" if args.time_budget else f"{epochs} epochs"))
    start = time.perf_counter()
    model.fit(*train, batch_size=args.batch_size, epochs=epochs, validation_data=test, verbose=2, callbacks=callbacks)
    return model, time.perf_counter() - start


def run(args) -> int:
    if args.epochs < 1 or args.batch_size < 1 or args.time_budget < 0:
        raise SystemExit(f"--epochs and --batch-size must be >= 1 and --time-budget >= 0; received {args.epochs}, "
                         f"{args.batch_size} and {args.time_budget}.")
    from keras_vit.tflite.convert import export_tflite  # TensorFlow: only when the command runs, as in _train
    from keras_vit.tflite.runtime import LiteRTModel  # LiteRT: only when the command runs

    os.makedirs(args.output, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_digits(seed=args.seed)
    contract = Preprocessing(image_size=8, channels=1)
    train_inputs, test_inputs = contract.normalize(x_train), contract.normalize(x_test)

    try:
        model, train_seconds = _train(args, (train_inputs, y_train), (test_inputs, y_test))
    except RunStopped as stopped:
        print(stopped, file=sys.stderr)
        return stopped.exit_code
    keras_path = os.path.join(args.output, "model.keras")
    with atomic_path(keras_path) as temporary:
        model.save(temporary)
    keras_logits = model.predict(test_inputs, verbose=0)

    tflite_path = os.path.join(args.output, "model_int8.tflite")
    print(f"Exporting full-integer int8 TFLite (calibrated on 300 training images) to {tflite_path}")
    export_tflite(model, tflite_path, mode="int8", calibration=train_inputs[:300], preprocessing=contract,
                  labels=list(DIGIT_LABELS))

    lite = LiteRTModel(tflite_path, num_threads=2)
    lite_scores = lite.predict(x_test)  # uint8 pixels, normalized by the contract that travels with the file
    parity = compare_logits(keras_logits, lite_scores, y_test)  # the export checks' own comparison
    keras_accuracy, lite_accuracy = parity["keras_top1"], parity["export_top1"]
    agreement = parity["top1_agreement"]
    latency = lite.benchmark(runs=200, warmup=20)

    print()
    print(f"{'model':<22} {'test accuracy':>13} {'size':>10} {'latency p50':>12}")
    weights_kb = model.count_params() * 4 / 1024  # the .keras file also holds the optimizer's state
    print(f"{'Keras float32 weights':<22} {keras_accuracy:>13.2%} {weights_kb:>8.0f}KB {'':>12}")
    print(
        f"{'LiteRT int8 (.tflite)':<22} {lite_accuracy:>13.2%} {os.path.getsize(tflite_path) / 1024:>8.0f}KB "
        f"{latency['p50_ms']:>9.3f} ms"
    )
    print(
        f"\n{len(x_test)} held-out digits; int8 and float agree on {agreement:.1%} of them. "
        f"Training took {train_seconds:.0f} s; latency is batch 1, 2 threads, p90 {latency['p90_ms']:.3f} ms."
    )
    print(f"Files: {keras_path}, {tflite_path}. Try: keras-vit predict {tflite_path} IMAGE")
    return 0
