"""``keras-vit attention MODEL IMAGE [IMAGE ...] --output att.png``: where a ViT looks, as pictures.

Draws each image, its [class]-token attention rollout over it and every block's
[class] attention. With ``--figures DIR`` it also writes the paper's Fig. 7
pictures for this model: mean attention distance per head and depth (over all
the images read), position-embedding similarity and the patch filters'
principal components. MODEL is a ``.keras`` file, a pretrained checkpoint name
(``keras-vit models --pretrained``; fetched and cached) or a registered variant
name (random weights: useful only to try the command).
"""

import os
import sys

import numpy as np

from keras_vit import explain
from keras_vit.explain.attention import patch_distances
from keras_vit.explain.canvas import command_cannot_draw, save_figure
from keras_vit.images import load_image, scan_image_folder


def add_arguments(parser):
    parser.add_argument("model", help="a .keras file (keras-vit train writes RUN_DIR/model.keras), a checkpoint name "
                                      "(vit_base_patch16_224.augreg2_in21k_ft_in1k) or a variant name (random weights)")
    parser.add_argument("images", nargs="+", help="image files, or folders of them (flat or class sub-folders, sorted)")
    parser.add_argument("--output", default="attention.png", help="the attention picture (default attention.png)")
    parser.add_argument("--rows", type=int, default=4, help="images drawn in the attention picture (default 4)")
    parser.add_argument("--limit", type=int, default=64,
                        help="images read in all; the mean distance averages over them (default 64)")
    parser.add_argument("--figures", default=None, metavar="DIR",
                        help="also write mean_distance.png, position_similarity.png and patch_components.png here")
    parser.add_argument("--components", type=int, default=28, help="principal components drawn (default 28)")


def _files(paths, limit):
    files = []
    for path in paths:
        files.extend(scan_image_folder(path).paths if os.path.isdir(path) else [path])
    return files[:limit]


def _titles(model, inputs):
    if getattr(model, "num_classes", 0) < 2:  # a features-only model has no prediction to show
        return None
    probabilities = np.asarray(model.predict(inputs, verbose=0), np.float64)
    probabilities = np.exp(probabilities - probabilities.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    names = model.class_names or [f"class {i}" for i in range(probabilities.shape[1])]
    return [f"predicted {names[i]} ({p[i]:.0%})" for p, i in zip(probabilities, probabilities.argmax(1))]


def run(args) -> int:
    if command_cannot_draw():
        return 1
    from keras_vit.serialization import open_model  # Keras and TensorFlow: only once matplotlib is known present

    if args.rows < 1 or args.limit < 1:
        print(f"error: --rows and --limit must be at least 1; received {args.rows} and {args.limit}.", file=sys.stderr)
        return 2
    try:
        model = open_model(args.model, what="the picture")
        contract = model.preprocessing
        files = _files(args.images, args.limit)
        pixels = np.stack([load_image(f, contract.image_size, contract.channels, contract.interpolation)
                           for f in files])
    except (FileNotFoundError, ValueError, OSError) as error:  # OSError: a checkpoint that cannot be fetched
        print(f"error: {error}", file=sys.stderr)
        return 2
    shown = pixels[: args.rows]
    figure = explain.plot_attention(shown, explain.attention_rollout(model, shown), explain.attention_maps(model, shown),
                                    titles=_titles(model, contract.to_inputs(shown)))
    print(f"wrote {save_figure(figure, args.output)} ({len(shown)} image(s))")
    if args.figures:
        distance = explain.mean_attention_distance(model, pixels)
        paths = [
            save_figure(explain.plot_mean_distance(distance, contract.image_size, patch_distances(model).mean()),
                        os.path.join(args.figures, "mean_distance.png")),
            save_figure(explain.plot_position_similarity(explain.position_embedding_similarity(model)),
                        os.path.join(args.figures, "position_similarity.png")),
        ]
        try:
            components = explain.patch_embedding_components(model, args.components)
            paths.append(save_figure(explain.plot_patch_components(components),
                                     os.path.join(args.figures, "patch_components.png")))
        except ValueError as error:  # a hybrid's tokens are not image patches: there are no RGB filters to draw
            print(f"skipped patch_components.png: {error}")
        print(f"wrote {', '.join(paths)}")
        print(f"mean attention distance over {len(pixels)} image(s), pixels, per block (min / mean / max over heads; "
              f"uniform attention: {patch_distances(model).mean():.2f}):")
        for block, row in enumerate(distance):
            print(f"  block {block + 1}: {row.min():6.2f} / {row.mean():6.2f} / {row.max():6.2f}")
    return 0
