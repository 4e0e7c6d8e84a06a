"""``keras-vit train``: train a ViT with tf.distribute from a config file and flags.

Precedence: TrainConfig defaults < ``--config`` file < flags. Rerunning the same
command resumes from the newest checkpoint in ``--output-dir``.

A run that stops on purpose prints one line saying why and how to go on, and exits with
75 (SIGTERM/SIGINT: a checkpoint of the current step was saved; rerun to resume), 74 (a write
failed: full disk, quota, I/O error; earlier checkpoints are intact), 65 (non-finite loss or
gradient), 69 (a worker of a multi-worker run was lost or hung) or 73 (another live run holds
``--output-dir``); see ``keras_vit.training.faults``. A damaged newest checkpoint is reported and the one
before it resumed from. The run's features are Keras callbacks (``keras_vit.training``) that ``model.fit``
takes too.

Example:
    keras-vit train --config cifar10_vit_small --output-dir runs/cifar10
    keras-vit train --model vit_test --data digits --epochs 2 --smoke
    keras-vit train --config cifar10_hour --time-budget 60 --output-dir runs/hour
"""

import argparse
import json
import os
import sys

# flag -> TrainConfig field (None = same name with dashes as underscores)
_FLAGS = {
    "--model": ("model", str, "variant name or paper notation (vit_cifar_patch4_32, Ti/4)"),
    "--data": ("data", str, "digits | cifar10 | folder:PATH | PATH | tfds:NAME | tfds-folder:PATH"),
    "--data-dir": ("data_dir", str, "TFDS data directory"),
    "--eval-data": ("eval_data", str, "evaluation data spec (default: the test split of --data; 'none' skips)"),
    "--output-dir": ("output_dir", str, "run folder: checkpoints, best.keras, history.csv, tensorboard/"),
    "--epochs": ("epochs", int, "epochs"),
    "--batch-size": ("batch_size", int, "global batch size (split across replicas)"),
    "--steps-per-epoch": ("steps_per_epoch", int, "steps per epoch (default: examples // batch size)"),
    "--learning-rate": ("learning_rate", float, "peak learning rate at --base-batch-size"),
    "--base-batch-size": ("base_batch_size", int, "batch size the learning rate is quoted for"),
    "--lr-scaling": ("lr_scaling", str, "linear | sqrt | none"),
    "--warmup-epochs": ("warmup_epochs", float, "linear warmup length"),
    "--weight-decay": ("weight_decay", float, "AdamW decoupled weight decay"),
    "--label-smoothing": ("label_smoothing", float, "label smoothing epsilon"),
    "--clip-norm": ("clip_norm", float, "global gradient-norm clip (0 = off)"),
    "--dropout-rate": ("dropout_rate", float, "dropout"),
    "--drop-path-rate": ("drop_path_rate", float, "stochastic depth at the last block"),
    "--crop": ("crop", str, "pad | resized | none"),
    "--rand-augment-ops": ("rand_augment_ops", int, "RandAugment N (0 = off)"),
    "--rand-augment-magnitude": ("rand_augment_magnitude", float, "RandAugment M"),
    "--mixup-alpha": ("mixup_alpha", float, "Mixup alpha (0 = off)"),
    "--cutmix-alpha": ("cutmix_alpha", float, "CutMix alpha (0 = off)"),
    "--strategy": ("strategy", str, "auto | one_device | mirrored | multi_worker | tpu"),
    "--tpu": ("tpu", str, "TPU name/address for TPUStrategy"),
    "--logical-cpus": ("logical_cpus", int, "split the CPU into N logical devices (for mirrored on CPU)"),
    "--precision": ("precision", str, "float32 | mixed (bf16 CPU/TPU, fp16 GPU) | mixed_bfloat16 | mixed_float16"),
    "--threads": ("threads", int, "TensorFlow intra-op threads (0 = all cores)"),
    "--seed": ("seed", int, "seed of data order, augmentation and initialization"),
    "--checkpoint-every": ("checkpoint_every", int, "steps between checkpoints (also at epoch ends)"),
    "--max-train-examples": ("max_train_examples", int, "use a seeded subset of N training examples"),
    "--max-eval-examples": ("max_eval_examples", int, "use a seeded subset of N evaluation examples"),
    "--time-budget": ("time_budget", float, "wall-clock MINUTES for the whole run (loading, compiling, final "
                      "evaluation included): the learning rate follows the fraction spent to its floor at the end"),
    "--calibration-steps": ("calibration_steps", int,
                            "steps before a --time-budget run times a save and an evaluation (what its end needs)"),
    "--keep-checkpoints": ("keep_checkpoints", int, "periodic checkpoints kept"),
    "--log-every": ("log_every", int, "steps between TensorBoard scalars (and stdout lines with --no-progress)"),
    "--on-nan": ("on_nan", str, "non-finite loss or gradient: stop (default) | skip the step"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file or bundled config name (see keras_vit/training/configs)")
    for flag, (dest, kind, help_text) in _FLAGS.items():
        parser.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)
    parser.add_argument("--set", action="append", default=[], metavar="MODEL_ARG=VALUE",
                        help="model override, e.g. --set hidden_dim=96 (repeatable; JSON values)")
    parser.add_argument("--no-jit", dest="jit_compile", action="store_false", default=None,
                        help="disable XLA compilation of the train step")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    parser.add_argument("--smoke", "--runlocal", dest="smoke", action="store_true",
                        help="shrink the run to seconds (2 epochs x 4 steps)")


def _model_overrides(pairs):
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects MODEL_ARG=VALUE; received {pair!r}.")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def build_config(args):
    """The ``TrainConfig`` for parsed ``args`` (defaults < config file < flags)."""
    from keras_vit.training.config import TrainConfig, load_config_file, smoke

    config = TrainConfig()
    if args.config:
        config.update(load_config_file(args.config, runlocal=args.smoke))
    flags = {dest: getattr(args, dest) for dest, _, _ in _FLAGS.values()}
    flags.update(jit_compile=args.jit_compile, progress=args.progress)
    config.update({k: v for k, v in flags.items() if v is not None})
    if args.set:
        config.model_overrides = {**config.model_overrides, **_model_overrides(args.set)}
    if args.smoke:
        smoke(config)
    return config


def run(args) -> int:
    summary = run_config(build_config(args))
    if not isinstance(summary, dict):
        return summary
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items() if k != "step_losses"}
    print("Summary: " + json.dumps(shown))
    return 0


def run_config(config):
    """``train(config)``; a run that stops on purpose prints its one line and gives its exit code instead.

    Returns:
        the summary, or the exit code (75 preempted, 74 write failed, 65 diverged, 69 worker lost, 73 folder held).
    """
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from keras_vit.training.faults import Preempted, RunStopped, WorkerLost
    from keras_vit.training.run import train

    try:
        return train(config)
    except RunStopped as stopped:
        print(stopped, file=sys.stderr, flush=True)
        if isinstance(stopped, (Preempted, WorkerLost)):
            # Everything is saved and flushed; skip the interpreter's teardown of TensorFlow (seconds on a
            # busy machine, and gRPC may wait for the lost peer), since a preemption's grace period is short.
            sys.stdout.flush()
            os._exit(stopped.exit_code)
        return stopped.exit_code
