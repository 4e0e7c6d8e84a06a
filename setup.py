"""keras_vit: the Vision Transformer for Keras 3, from model.fit to int8 TFLite on edge devices.

The repository keeps training/ and tflite/ at the top level; they install as
keras_vit.training and keras_vit.tflite, so no generic top-level name
(``training``, ``tflite``) lands in site-packages.
"""

import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTS = {"keras_vit": "keras_vit", "keras_vit.training": "training", "keras_vit.tflite": "tflite"}


def _packages():
    found = []
    for package, folder in ROOTS.items():
        for dirpath, dirnames, filenames in os.walk(os.path.join(HERE, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            if "__init__.py" in filenames:
                rel = os.path.relpath(dirpath, os.path.join(HERE, folder))
                found.append(package if rel == "." else package + "." + rel.replace(os.sep, "."))
    return sorted(set(found))


# Measured working together here on Python 3.11, 3.12 and 3.13 (.ci/other_pythons.sh runs a fast subset on each).
TRAIN = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tensorflow-datasets==4.9.10",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "tqdm==4.70.1",
    "scikit-learn==1.9.1",
]
RUNTIME = ["ai-edge-litert==2.3.0", "numpy==2.4.6", "pillow==13.0.0"]
# ai-edge-quantizer 0.10.0 writes the int8_cpu mode; it pins our ai-edge-litert and adds only litert-lm-builder, tomli.
EXPORT = ["tf2onnx==1.17.0", "onnx==1.23.2", "onnxruntime==1.32.0", "protobuf==7.36.2", "ai-edge-quantizer==0.10.0"]
PLOT = ["matplotlib==3.11.2"]
# Parity tests of keras_vit.weights against the source libraries (run in subprocesses). timm imports
# torchvision, and PyPI's torchvision wheels are CUDA builds pinned to one torch: torchvision 0.28.0 fails to
# import beside the CPU torch 2.13.0 ("operator torchvision::nms does not exist"), so the pair is
# torch 2.14.1 + torchvision 0.29.1 (a CUDA build that runs on the CPU; ~5.5 GB installed).
WEIGHTS_TEST = [
    "torch==2.14.1",
    "torchvision==0.29.1",
    "timm==1.0.31",
    "transformers==5.23.0",
    "safetensors==0.8.0",
]
# importlib-resources: TFDS writes a small data set in the tests.
# mediapipe 1.2.2: the app-side ImageClassifier the metadata test runs (~440 MB with opencv); tests only,
# metadata is written with flatbuffers alone. It keeps TensorFlow's protobuf and numpy (0.10.21 needs numpy<2).
# pytest-xdist (and its execnet): pytest.ini runs the suite on two workers, one file each at a time.
TEST = ["pytest==9.0.3", "pytest-xdist==3.8.0", "execnet==2.1.2", "importlib-resources==7.1.0"] + WEIGHTS_TEST + [
    "mediapipe==1.2.2"]

# Python 3.10 (end of life 2026-10) has no wheels of these pins: the newest releases that support it, checked with
# `pip download --no-deps --only-binary=:all: --python-version 3.10`. The pins above stay as measured on 3.11+.
PY310 = {"keras": "3.12.4", "numpy": "2.2.6", "pillow": "12.3.0", "scikit-learn": "1.7.2", "matplotlib": "3.10.9",
         "onnxruntime": "1.23.2", "transformers": "5.20.2"}


def _every_python(pins):
    """Each pin as written for Python 3.11+, and its PY310 release (if any) for Python 3.10."""
    out = []
    for pin in pins:
        name = pin.split("==")[0]
        if name in PY310:
            out += [f"{pin}; python_version >= '3.11'", f"{name}=={PY310[name]}; python_version < '3.11'"]
        else:
            out.append(pin)
    return out


setup(
    name="keras-vit",
    version="0.1.0",
    description="Vision Transformer (ViT) for Keras 3: train with tf.distribute, ship int8 TFLite.",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.14",
    packages=_packages(),
    package_dir={p: f for p, f in ROOTS.items()},
    package_data={"keras_vit": ["data/*.tsv"], "keras_vit.training": ["configs/*.py"]},
    install_requires=_every_python(TRAIN + RUNTIME),
    extras_require={
        "runtime": _every_python(RUNTIME),
        "export": _every_python(EXPORT),
        "plot": _every_python(PLOT),
        "test": _every_python(TEST + EXPORT + PLOT),
    },
    entry_points={"console_scripts": ["keras-vit=keras_vit.cli:main"]},
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Framework :: Keras",
    ],
)
