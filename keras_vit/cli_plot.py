"""``keras-vit plot RUN_DIR``: a training run's loss, accuracy and learning rate as a PNG (no TensorFlow).

Reads ``RUN_DIR/history.csv`` (one row per epoch, written by ``keras-vit train``)
and draws each against the training step and the training wall time.
"""

import os
import sys

import numpy as np

from keras_vit.explain.canvas import command_cannot_draw, save_figure
from keras_vit.explain.runs import plot_training_curves, read_history


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run folder written by keras-vit train --output-dir (holds history.csv)")
    parser.add_argument("--output", default=None, help="the PNG to write (default RUN_DIR/curves.png)")


def run(args) -> int:
    if command_cannot_draw():
        return 1
    try:
        history = read_history(args.run_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output = args.output or os.path.join(args.run_dir, "curves.png")
    save_figure(plot_training_curves(history), output)
    line = f"wrote {output} ({len(history['step'])} epochs, {int(history['step'][-1])} steps"
    evaluated = history.get("eval_accuracy")
    if evaluated is not None and evaluated[~np.isnan(evaluated)].size:
        line += f", last eval accuracy {evaluated[~np.isnan(evaluated)][-1]:.1%}"
    print(line + ")")
    return 0
