"""The ``keras-vit`` command: one entry point, each subcommand imported only when it runs.

Each subcommand lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``; this file only names them. ``keras-vit --help`` imports none
of them (so no TensorFlow); ``keras-vit CMD ...`` imports only CMD's module. Bad
input (``FileNotFoundError`` / ``ValueError``) is printed as one ``error:`` line and
exits 2; ``KERAS_VIT_DEBUG=1`` shows the traceback instead.
"""

import argparse
import importlib
import importlib.util
import os
import sys

# name: (module, one-line help)
COMMANDS = {
    "quickstart": ("keras_vit.quickstart", "train a small ViT on bundled digits, export int8 TFLite, run it"),
    "models": ("keras_vit.cli_models", "list the registered ViT variants"),
    "train": ("keras_vit.training.cli_train", "train a ViT with tf.distribute"),
    "evaluate": ("keras_vit.training.cli_evaluate", "evaluate a saved .keras model"),
    "finetune": ("keras_vit.training.cli_finetune", "fine-tune pretrained weights (the paper's transfer recipe)"),
    "export": ("keras_vit.tflite.cli_export", "export a .keras model to TFLite or ONNX and verify it"),
    "verify": ("keras_vit.tflite.cli_verify", "inspect and check a .tflite file"),
    "predict": ("keras_vit.tflite.cli_predict", "classify images with a .tflite file (LiteRT only), a .keras file or a checkpoint name"),
    "benchmark": ("keras_vit.tflite.cli_benchmark", "measure a .tflite model's latency"),
    "attention": ("keras_vit.cli_attention", "draw where a ViT attends: rollout, per-block maps, Fig. 7 pictures"),
    "plot": ("keras_vit.cli_plot", "draw a training run's loss, accuracy and learning rate (history.csv)"),
}


def _available():
    names = {}
    for name, (module, help_text) in COMMANDS.items():
        try:
            if importlib.util.find_spec(module) is not None:
                names[name] = (module, help_text)
        except ModuleNotFoundError:
            continue
    return names


def build_parser(commands=None, chosen=None) -> argparse.ArgumentParser:
    """The parser with every command listed; only ``chosen`` (default: all) gets its module's arguments."""
    commands = _available() if commands is None else commands
    chosen = set(commands) if chosen is None else set(chosen)
    parser = argparse.ArgumentParser(prog="keras-vit", description="Vision Transformers for Keras 3 and LiteRT.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in commands.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name in chosen:
            importlib.import_module(module).add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = _available()
    # Only the command being run imports its module; the command list alone imports nothing.
    parser = build_parser(commands, [argv[0]] if argv and argv[0] in commands else [])
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (FileNotFoundError, ValueError) as error:  # bad input: one line that says what and how, no traceback
        if os.environ.get("KERAS_VIT_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
