"""Matplotlib, imported only when a picture is drawn, and one way to make and save a figure.

Matplotlib is the optional ``plot`` extra. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no GUI backend, no global state), so
drawing works the same in a script, a test or a server.
"""

import os
import sys

from keras_vit.atomic import atomic_path

INSTALL_HINT = "Drawing pictures needs matplotlib, which is not installed. Install it with: pip install 'keras-vit[plot]'"


def require_matplotlib():
    """Imports matplotlib or raises ``ImportError`` that says how to install it.

    Example:
        >>> require_matplotlib().__name__
        'matplotlib'
    """
    try:
        import matplotlib  # the optional [plot] extra: its absence is reported, not raised at import
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return matplotlib


def command_cannot_draw() -> bool:
    """For a command: True (after printing how to install matplotlib on stderr) when it cannot draw.

    Example:
        >>> command_cannot_draw()
        False
    """
    try:
        require_matplotlib()
    except ImportError as error:
        print(f"error: {error}", file=sys.stderr)
        return True
    return False


def new_figure(width: float, height: float, dpi: int = 100):
    """A ``Figure`` of ``width x height`` inches with constrained layout (``dpi`` pixels per inch when saved).

    Example:
        >>> [float(v) for v in new_figure(3, 2).get_size_inches() * 100]
        [300.0, 200.0]
    """
    require_matplotlib()
    from matplotlib.figure import Figure  # the optional [plot] extra, checked just above

    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def save_figure(figure, path) -> str:
    """Writes ``figure`` to ``path`` atomically (PNG unless the suffix says otherwise) at the figure's size.

    Returns the path.

    Example:
        >>> figure = new_figure(2, 1)
        >>> _ = figure.add_subplot().plot([0, 1])
        >>> save_figure(figure, "/tmp/keras_vit_canvas.png")
        '/tmp/keras_vit_canvas.png'
    """
    path = os.fspath(path)
    with atomic_path(path) as temporary:  # its name keeps the suffix, from which matplotlib takes the format
        figure.savefig(temporary, dpi=figure.dpi)
    return path
