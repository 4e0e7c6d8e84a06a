"""Pictures of runs rather than models: training curves from ``history.csv`` and the export trade-off.

NumPy and matplotlib only: ``keras-vit plot`` never imports TensorFlow.
"""

import csv
import os

import numpy as np

from keras_vit.explain.canvas import new_figure

ACCURACY_KEYS = ("top1", "agreement")


def read_history(path) -> dict:
    """A run's ``history.csv`` (one row per epoch, written by ``keras-vit train``) as columns.

    Args:
        path: the CSV file, or the run folder that holds it.

    Returns:
        ``{column: float64 array}``; a value a row lacks (no evaluation that epoch) is NaN.

    Raises:
        FileNotFoundError: when there is no history (names the path and what writes it).
        ValueError: when the file has no rows.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, "history.csv"), "w") as f:
        ...     _ = f.write("epoch,step,train_loss\\n0,10,2.3\\n1,20,2.1\\n")
        >>> read_history(folder)["train_loss"].tolist()
        [2.3, 2.1]
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "history.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No training history at {path!r}. Pass a run folder written by 'keras-vit train "
            f"--output-dir RUN_DIR' (it holds history.csv)."
        )
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path!r} has a header but no epochs yet; plot it after the first epoch ends.")
    return {key: np.array([float(row[key]) if row.get(key) else np.nan for row in rows]) for key in rows[0]}


def plot_training_curves(history):
    """Loss, accuracy and learning rate against steps (top row) and training wall time (bottom row).

    Wall time is the running sum of ``epoch_seconds`` (time in the training loop;
    evaluation and checkpointing between epochs are not counted).

    Args:
        history: :func:`read_history` output (or a path it accepts).

    Returns:
        a 12 x 6.5 inch ``Figure`` (1200 x 650 pixels at its dpi of 100).

    Example:
        >>> import numpy as np
        >>> history = {"step": np.array([10.0, 20.0]), "train_loss": np.array([2.3, 2.1]),
        ...            "epoch_seconds": np.array([5.0, 5.0])}
        >>> [float(s) for s in plot_training_curves(history).get_size_inches()]
        [12.0, 6.5]
    """
    if not isinstance(history, dict):
        history = read_history(history)
    if "step" not in history:
        raise ValueError(f"The history has no 'step' column; its columns are {sorted(history)}.")
    axes_x = [("step", history["step"], "training step")]
    if "epoch_seconds" in history:
        axes_x.append(("wall", np.cumsum(history["epoch_seconds"]) / 60.0, "training wall time (minutes)"))
    panels = [
        ("loss", [("train_loss", "train"), ("eval_loss", "eval")]),
        ("accuracy", [("train_accuracy", "train"), ("eval_accuracy", "eval")]),
        ("learning rate", [("learning_rate", "learning rate")]),
    ]
    figure = new_figure(12.0, 6.5)
    axes = figure.subplots(2, 3, squeeze=False)
    for row, (_, x, xlabel) in enumerate(axes_x):
        for column, (title, series) in enumerate(panels):
            ax = axes[row, column]
            for key, label in series:
                if key in history and not np.all(np.isnan(history[key])):
                    ax.plot(x, history[key], marker="o", markersize=3, label=label)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
            if len(series) > 1 and ax.has_data():
                ax.legend(fontsize=8)
    if len(axes_x) == 1:
        for ax in axes[1]:
            ax.set_axis_off()
        axes[1, 1].text(0.5, 0.5, "no epoch_seconds column: no wall-time axis", ha="center", transform=axes[1, 1].transAxes)
    return figure


def _accuracy(result):
    for key in ACCURACY_KEYS:
        if result.get(key) is not None:
            return key, float(result[key])
    raise ValueError(f"Export result for mode {result.get('mode')!r} has neither {' nor '.join(ACCURACY_KEYS)}: {result}.")


def plot_export_tradeoff(results):
    """Accuracy against file size and against latency, one labelled point per export mode.

    Args:
        results: a list of dicts, one per exported file: ``mode``, ``size_bytes``,
            ``latency_ms`` and ``top1`` (accuracy on labelled images) or ``agreement``
            (top-1 agreement with the Keras model), fractions in [0, 1].

    Returns:
        a 10 x 4 inch ``Figure``.

    Raises:
        ValueError: for an empty list or a result that misses a field (names it).

    Example:
        >>> results = [{"mode": "float32", "size_bytes": 2_300_000, "latency_ms": 4.1, "top1": 0.53},
        ...            {"mode": "int8", "size_bytes": 700_000, "latency_ms": 2.2, "top1": 0.52}]
        >>> [float(s) for s in plot_export_tradeoff(results).get_size_inches()]
        [10.0, 4.0]
    """
    if not results:
        raise ValueError("plot_export_tradeoff needs at least one export result.")
    for result in results:
        missing = [key for key in ("mode", "size_bytes", "latency_ms") if result.get(key) is None]
        if missing:
            raise ValueError(f"Export result {result} lacks {missing}; each needs mode, size_bytes and latency_ms.")
    accuracy = [_accuracy(result) for result in results]
    label = "top-1 accuracy" if all(key == "top1" for key, _ in accuracy) else "top-1 (accuracy or agreement)"
    figure = new_figure(10.0, 4.0)
    axes = figure.subplots(1, 2)
    for ax, key, xlabel in ((axes[0], "size_bytes", "file size (MiB)"), (axes[1], "latency_ms", "latency (ms)")):
        for result, (_, value) in zip(results, accuracy):
            x = result[key] / 2**20 if key == "size_bytes" else result[key]
            ax.scatter([x], [100 * value], s=30)
            ax.annotate(result["mode"], (x, 100 * value), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{label} (%)")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    return figure
