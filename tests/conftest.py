"""Shared fixtures: real CIFAR-10 images from ../shared/data, tiny models, subprocess helpers."""

import fcntl
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_vit.datasets import CIFAR10_LABELS, cifar10_dir  # noqa: E402

NO_CIFAR = (
    "the shared CIFAR-10 archives are absent: set KERAS_VIT_DATA to the folder that holds "
    "cifar10/cifar10-{train,test}.tar.gz (.ci/run points it at ../shared/data)"
)


# The files that took longest (seconds in --durations, whole suite on the busy 2-core machine, 2026-12-04), which
# pytest-xdist hands out first so both workers finish together; all other files follow in their usual order.
LONGEST_FIRST = {
    "test_training_faults.py": 226, "test_hybrid.py": 145, "test_training_distributed.py": 76,
    "test_aarch64.py": 67, "test_tflite_metadata.py": 61, "test_training_resume.py": 60, "test_model.py": 53,
    "test_tflite_export.py": 38, "test_training_recipe.py": 26, "test_quickstart.py": 25,
    # the callbacks' drills, measured on two workers at load ~2.5 (2026-12-04 18:32)
    "test_training_callbacks_drills.py": 303, "test_training_callbacks_finetune.py": 91,
    "test_training_callbacks_readme.py": 83,
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s; still runs in CI")
    config.addinivalue_line("markers", "serial: bounds its own wall time; under pytest-xdist the other workers wait")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under pytest-xdist a ``serial`` test runs alone: it holds the run's lock exclusively, each other test shared.

    The lock covers setup and teardown, so a module's export in another worker counts as running. A waiting
    serial test leaves a flag that keeps the other workers from starting a test until it has had its turn.
    """
    if not hasattr(item.config, "workerinput"):  # one process: nothing runs beside the test
        yield
        return
    run_dir = os.path.dirname(item.config.option.basetemp)  # the run's basetemp, shared by its workers
    flag = os.path.join(run_dir, "serial.wanted")
    with open(os.path.join(run_dir, "serial.lock"), "a") as lock:
        if item.get_closest_marker("serial"):
            open(flag, "a").close()
            fcntl.flock(lock, fcntl.LOCK_EX)
            os.remove(flag)
        else:
            while os.path.exists(flag):
                time.sleep(0.5)
            fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture scope
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -LONGEST_FIRST.get(item.path.name, 0))  # stable: each file keeps its own order


@pytest.fixture(scope="session")
def cifar10_test_root():
    root = cifar10_dir("test")
    if root is None:
        pytest.skip(NO_CIFAR)
    return root


@pytest.fixture(scope="session")
def cifar10_train_root():
    root = cifar10_dir("train")
    if root is None:
        pytest.skip(NO_CIFAR)
    return root


def read_image_folder(root, per_class, offset=0):
    """uint8 images (N, H, W, 3) and labels from a class-folder tree, ``per_class`` from each class."""
    from PIL import Image

    from keras_vit.images import scan_image_folder

    listing = scan_image_folder(root, CIFAR10_LABELS)
    images, labels = [], []
    for label in range(len(CIFAR10_LABELS)):
        for path in [p for p, k in zip(listing.paths, listing.labels) if k == label][offset : offset + per_class]:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


@pytest.fixture(scope="session")
def cifar10_sample(cifar10_test_root):
    """200 real CIFAR-10 test images (20 a class) as uint8 (200, 32, 32, 3) and their labels."""
    return read_image_folder(cifar10_test_root, per_class=20)


def run_python(code, *, env=None, timeout=600, cwd=None):
    """Runs ``code`` in a fresh interpreter (TFLite conversions leak memory in-process)."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout
