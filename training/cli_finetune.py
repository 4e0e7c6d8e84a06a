"""``keras-vit finetune``: pretrained weights -> a new task, with the paper's transfer recipe.

The recipe of Dosovitskiy et al. 2021 (Sec. 3.2 and App. B.1.1) and their
vit_jax code: the pre-trained head (and pre-logits layer) is replaced by one
zero-initialised ``Dense`` for the new classes; SGD with momentum 0.9, no
weight decay, gradients clipped to global norm 1.0, a linear warmup then cosine
decay; fine-tuning at a higher resolution than pre-training is fine because
the position embeddings are interpolated (``load_weights`` does it).

Inputs are normalized by the checkpoint's contract (``load_weights`` sets it on
the model: ``[-1, 1]`` for Google ``.npz`` checkpoints; the config file's
mean/std for timm / Hugging Face folders; ``--mean``/``--std`` override it). The
saved model carries that contract and the data's class names, so ``keras-vit
export`` and ``evaluate`` need no preprocessing or label flags.

A fine-tuning run *is* a ``keras-vit train`` run (:func:`finetune_config` fills its ``TrainConfig``:
``weights``, ``optimizer="sgd"``): the same loop and callbacks, so the same ``--time-budget``, the
save on SIGTERM and resume (exit 75), the named full disk (74), the divergence guard (65), the folder
lock (73), checkpoints, ``history.csv`` and TensorBoard in ``--output``.

Example (runs in about a minute on 2 CPU cores):
    keras-vit finetune --model vit_test --weights timm_vit_test/model.safetensors \\
        --data cifar10 --steps 50 --batch-size 32 --output runs/finetune
"""

import argparse
import json
import math
import os
import sys

# The command's model and optimizer live in transfer.py (run.py builds the model; it must not import a CLI).
from keras_vit.training.transfer import transfer_model, transfer_optimizer  # noqa: F401


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="variant, e.g. Ti/16 (default with a checkpoint name: its own)")
    parser.add_argument("--weights", required=True, help="checkpoint: original .npz, timm/HF .safetensors or .pth, "
                                                         "or a name (keras-vit models --pretrained)")
    parser.add_argument("--source", choices=("npz", "timm", "huggingface"), default=None,
                        help="checkpoint layout (default: told by the file)")
    parser.add_argument("--data", required=True, help="digits, cifar10, folder:PATH (PATH/train/<class>/...)")
    parser.add_argument("--image-size", type=int, default=None, help="fine-tuning resolution (default: the model's)")
    parser.add_argument("--steps", type=int, default=500, help="training steps (batches)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of --steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.01, help="peak SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--clip-norm", type=float, default=1.0, help="global gradient-norm clip")
    parser.add_argument("--eval-examples", type=int, default=1000, help="test examples to score (0: none)")
    parser.add_argument("--mean", type=float, nargs="+", default=None, help="override the checkpoint's mean")
    parser.add_argument("--std", type=float, nargs="+", default=None, help="override the checkpoint's std")
    parser.add_argument("--layer-norm-epsilon", type=float, default=None,
                        help="the checkpoint's LayerNorm epsilon (Hugging Face configs: 1e-12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="wall-clock MINUTES: the learning rate follows the clock and the run stops on time "
                             "(--steps then only sizes the epochs)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--no-jit", dest="jit_compile", action="store_false", help="no XLA for the train step")
    parser.add_argument("--output", required=True, help="run folder: model.keras, finetune.json, checkpoints/ ...")


def _validate(args):
    for name in ("steps", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1; received {getattr(args, name)}.")
    if args.warmup_steps is not None and not 0 <= args.warmup_steps < args.steps:
        raise SystemExit(f"--warmup-steps must be in [0, --steps); received {args.warmup_steps}.")
    if args.learning_rate <= 0 or args.clip_norm <= 0:
        raise SystemExit("--learning-rate and --clip-norm must be > 0.")
    from keras_vit.factory import resolve

    try:
        kind = resolve(args.weights).kind
    except ValueError as error:
        raise SystemExit(f"--weights {args.weights!r} does not exist and is not a checkpoint name: {error}") from None
    if kind != "checkpoint" and not os.path.isfile(args.weights):
        raise SystemExit(f"--weights {args.weights!r} does not exist and is not a checkpoint name "
                         f"(keras-vit models --pretrained lists them).")
    if args.model is None and kind != "checkpoint":
        raise SystemExit("--model is required with a checkpoint file.")


def finetune_config(args, train_examples: int):
    """The ``TrainConfig`` of a fine-tuning run: ``keras-vit train`` from a checkpoint with the transfer recipe.

    Epochs of equal length cover ``--steps`` (at most epochs - 1 more); the schedule spans exactly those steps,
    or the clock with ``--time-budget``. One evaluation, at the end, on ``--eval-examples`` test examples.
    """
    from keras_vit.training.config import Augment, TrainConfig

    most_per_epoch = min(args.steps, train_examples // args.batch_size)
    if most_per_epoch < 1:
        raise SystemExit(f"--batch-size {args.batch_size} exceeds the {train_examples} training examples.")
    epochs = math.ceil(args.steps / most_per_epoch)
    steps_per_epoch = math.ceil(args.steps / epochs)
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, args.steps // 20)
    overrides = {"image_size": args.image_size} if args.image_size else {}
    if args.layer_norm_epsilon is not None:
        overrides["layer_norm_epsilon"] = args.layer_norm_epsilon
    return TrainConfig(
        model=args.model, weights=args.weights, weights_source=args.source, data=args.data, output_dir=args.output,
        model_overrides=overrides, epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=args.batch_size,
        learning_rate=args.learning_rate, lr_scaling="none", warmup_epochs=warmup / steps_per_epoch,
        min_learning_rate=0.0, optimizer="sgd", momentum=args.momentum, clip_norm=args.clip_norm,
        label_smoothing=0.0, dropout_rate=0.0, drop_path_rate=0.0, augment=Augment(crop="none", flip=True),
        eval_data=None if args.eval_examples else "none", max_eval_examples=args.eval_examples or None,
        eval_every=epochs, seed=args.seed, mean=args.mean, std=args.std, time_budget=args.time_budget,
        checkpoint_every=args.checkpoint_every, jit_compile=args.jit_compile, progress=False,
        log_every=max(1, min(50, steps_per_epoch // 4)))


def run(args) -> int:
    from keras_vit.training import sources
    from keras_vit.training.cli_train import run_config

    _validate(args)
    config = finetune_config(args, sources.load_source(args.data, "train").num_examples)
    summary = run_config(config)
    if not isinstance(summary, dict):
        return summary
    result = {"model": args.model, "weights": os.path.abspath(args.weights) if os.path.isfile(args.weights)
              else args.weights, "source": summary["source"], "data": args.data, "steps": summary["steps"],
              "warmup_steps": round(config.warmup_epochs * config.steps_per_epoch),
              "learning_rate": args.learning_rate, "batch_size": args.batch_size,
              "final_loss": summary["final_train_loss"], "load_report": summary["load_report"]}
    if args.eval_examples:
        result.update(test_accuracy=summary["eval_accuracy"], test_examples=summary["eval_examples"])
        print(f"Test accuracy on {summary['eval_examples']} examples: {summary['eval_accuracy']:.4f}")
    from keras_vit.atomic import atomic_write
    from keras_vit.training.faults import WriteFailed, writing

    path = os.path.join(args.output, "finetune.json")
    try:
        with writing(path):
            atomic_write(path, json.dumps(result, indent=2))
    except WriteFailed as failed:
        print(f"{failed} model.keras is intact.", file=sys.stderr)
        return failed.exit_code
    print(f"Saved {os.path.join(args.output, 'model.keras')} (with its input contract and class names)")
    return 0
