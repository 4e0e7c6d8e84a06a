"""The README's ``model.fit`` example, run exactly as written: SIGTERM mid-run saves and exits 75, the rerun
resumes at that step and stops on its one-minute budget with the learning rate at its floor."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def readme_fit_example() -> str:
    text = open(README, encoding="utf-8").read()
    section = text.split("## Train with model.fit and the run's callbacks", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_fit_example_stops_on_time_at_the_floor_and_resumes_after_sigterm(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_fit_example())
    assert "TimeBudget(minutes=1" in script.read_text()
    first = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=ENV, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines, deadline = [], time.time() + 300
    while time.time() < deadline:  # two epochs done: past the warmup's start, a backup written
        line = first.stdout.readline()
        assert line, "".join(lines)[-3000:]
        lines.append(line)
        if line.startswith("Epoch 3/"):
            break
    sent = time.time()
    first.send_signal(signal.SIGTERM)
    output = "".join(lines) + first.communicate(timeout=120)[0]
    exit_seconds = time.time() - sent
    assert first.returncode == 75, output[-3000:]
    stopped = re.search(r"Stopped by SIGTERM at step (\d+): saved runs/fit/backup; run the same command again to "
                        r"resume from step \1\.", output)
    assert stopped, output[-3000:]
    step = int(stopped.group(1))
    assert os.path.isfile(tmp_path / "runs" / "fit" / "backup" / "latest.weights.h5")
    print(f"README fit example: SIGTERM -> exit 75 at step {step} after {exit_seconds:.1f} s")

    rerun = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, text=True, capture_output=True,
                           timeout=400)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    assert f"Resumed from runs/fit/backup at step {step}." in output, output[-3000:]
    assert "stopped on time: True, last learning rate 1e-05" in output, output[-3000:]
    assert re.search(r"val_accuracy: 0\.[3-9]", output), output[-3000:]  # it learned, and was evaluated at the end
    budget = __import__("json").loads((tmp_path / "runs" / "fit" / "budget.json").read_text())
    assert 45 <= budget["spent_s"] <= 60 + 15, budget  # both runs together spent about the one minute, not two
