#!/usr/bin/env bash
# CI on the Pythons besides the README's 3.11: for each, a fresh venv, `pip install -e .` (plus setup.py's pytest
# and pytest-xdist pins) and a fast subset of the suite in one process (-n 0: it runs beside the main suite's two
# workers): model build/save/load, layers, registry, the model contract and the LiteRT runtime on a tiny export,
# without the tests marked slow. The whole suite runs on 3.11 (.ci/run's last line).
#
# Usage: .ci/other_pythons.sh [3.10 3.12 ...]   (default: 3.10 3.12 3.13; interpreters from pyenv or PATH)
# Venvs and logs go to $KERAS_VIT_PYTHONS (default ~/.cache/keras_vit/pythons), outside the repo. A venv is built
# fresh when setup.py or pyproject.toml changed since it was built (or KERAS_VIT_FRESH_VENVS=1), else kept and
# only the editable install re-pointed at this clone.
# Exits 1 when a Python is missing, fails to install or fails a test; prints one line per Python with its times.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=(3.10 3.12 3.13); fi
ROOT="${KERAS_VIT_PYTHONS:-${XDG_CACHE_HOME:-$HOME/.cache}/keras_vit/pythons}"
SUBSET=(tests/test_model.py tests/test_layers.py tests/test_registry.py tests/test_model_contract.py
        tests/test_tflite_runtime.py)
PYTEST=($(grep -o -E '"(pytest|pytest-xdist|execnet)==[^"]*"' setup.py | tr -d '"'))  # pytest.ini's addopts need xdist
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$ROOT"

find_python() {  # pyenv's interpreter of that version, else one on PATH
  local candidate
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python"$1"; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  command -v "python$1"
}

status=0
summary=()
for version in "${VERSIONS[@]}"; do
  log="$ROOT/$version.log"
  python=$(find_python "$version") || { summary+=("python$version: not found (pyenv or PATH)"); status=1; continue; }
  start=$SECONDS
  venv="$ROOT/$version"
  key="$(cat setup.py pyproject.toml | sha256sum | cut -c1-16) $("$python" -V 2>&1)"
  if [ -z "${KERAS_VIT_FRESH_VENVS:-}" ] && [ "$(cat "$venv/keras_vit.key" 2>/dev/null)" = "$key" ]; then
    how="venv kept: same setup.py"  # only re-point the editable install at this clone
    "$venv/bin/pip" install -q --no-deps -e . >"$log" 2>&1 || how=FAILED
  else
    how="fresh venv"
    # Python 3.10's bundled pip 23.0 backtracks for minutes over TensorFlow's dependencies; a current pip does not.
    { "$python" -m venv --clear "$venv" && "$venv/bin/python" -m pip install -q --upgrade pip \
      && "$venv/bin/pip" install -q -e . "${PYTEST[@]}" && echo "$key" >"$venv/keras_vit.key"; } >"$log" 2>&1 || how=FAILED
  fi
  if [ "$how" = FAILED ]; then
    summary+=("python$version: install FAILED after $((SECONDS - start)) s, see $log"); status=1; continue
  fi
  installed=$((SECONDS - start))
  if "$venv/bin/python" -m pytest -q -n 0 -p no:cacheprovider --durations=5 -m "not slow" "${SUBSET[@]}" >>"$log" 2>&1; then
    result=passed
  else
    result=FAILED; status=1
  fi
  summary+=("$("$venv/bin/python" -V 2>&1): install ${installed} s ($how), subset $result in $((SECONDS - start - installed)) s: $(tail -n 1 "$log")")
done
printf '%s\n' "${summary[@]}"
exit $status
