"""The README's main job runs end to end and prints real numbers."""

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quickstart_trains_exports_int8_and_runs_it_with_litert(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "keras_vit.cli", "quickstart", "--epochs", "2", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert os.path.getsize(tmp_path / "model_int8.tflite") > 50_000
    assert (tmp_path / "model_int8.json").exists() and (tmp_path / "model.keras").exists()
    row = re.search(r"LiteRT int8 \(\.tflite\)\s+([\d.]+)%\s+(\d+)KB\s+([\d.]+) ms", out.stdout)
    assert row, out.stdout[-2000:]
    accuracy, size_kb, latency = float(row.group(1)), int(row.group(2)), float(row.group(3))
    assert accuracy > 20.0  # two epochs on 10 classes: well above chance (10%)
    assert size_kb == round(os.path.getsize(tmp_path / "model_int8.tflite") / 1024)
    assert latency > 0


def test_quickstart_rejects_bad_arguments():
    from keras_vit.cli import main

    with pytest.raises(SystemExit, match="--epochs and --batch-size must be >= 1"):
        main(["quickstart", "--epochs", "0"])
