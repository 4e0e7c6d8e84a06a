"""One script for the end-to-end export tests: train a model briefly on real CIFAR-10, export every mode.

The script runs in a fresh interpreter (``conftest.run_python``: conversions leak memory). It trains the
model for 4 epochs on 1,000 training images, saves it, and runs ``keras-vit export --mode all`` with
calibration from the training folder and the parity check on 200 held-out test images, printing
``EXIT <code>`` and each mode's verifier table.
"""

import os

from keras_vit.datasets import CIFAR10_LABELS

HERE = os.path.dirname(os.path.abspath(__file__))


def train_and_export_script(variant: str, overrides: str, model_path: str, tflite_path: str, train_root: str,
                            test_root: str, after: str = "") -> str:
    """The script's source; ``overrides`` is create_model keyword source (``'pooling="gap"'``), ``after`` runs last."""
    return f"""
import sys
sys.path.insert(0, {HERE!r})
import keras
from conftest import read_image_folder
import keras_vit
from keras_vit.preprocessing import Preprocessing
keras.utils.set_random_seed(0)
x, y = read_image_folder({train_root!r}, per_class=100)
model = keras_vit.create_model({variant!r}, {overrides + ", " if overrides else ""}class_names={list(CIFAR10_LABELS)!r})
model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(Preprocessing.for_model(model).normalize(x), y, epochs=4, batch_size=50, verbose=0)
model.save({model_path!r})
from keras_vit.cli import main
print("EXIT", main(["export", {model_path!r}, {tflite_path!r}, "--mode", "all",
                    "--calibration", {train_root!r}, "--calibration-size", "100",
                    "--verify-images", {test_root!r}, "--verify-count", "200"]))
{after}
"""
