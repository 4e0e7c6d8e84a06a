#!/usr/bin/env bash
# CI on the Pythons besides the README's 3.11: for each, a fresh venv, `pip install -e .` (plus setup.py's pytest
# pin) and a fast subset of the suite: model build/save/load, layers, registry, the model contract and the LiteRT
# runtime on a tiny export, without the tests marked slow. The whole suite runs on 3.11 (.ci/run's last line).
#
# Usage: .ci/other_pythons.sh [3.10 3.12 ...]   (default: 3.10 3.12 3.13; interpreters from pyenv or PATH)
# Venvs and logs go to $KERAS_VIT_PYTHONS (default ~/.cache/keras_vit/pythons), outside the repo.
# Exits 1 when a Python is missing, fails to install or fails a test; prints one line per Python with its times.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=(3.10 3.12 3.13); fi
ROOT="${KERAS_VIT_PYTHONS:-${XDG_CACHE_HOME:-$HOME/.cache}/keras_vit/pythons}"
SUBSET=(tests/test_model.py tests/test_layers.py tests/test_registry.py tests/test_model_contract.py
        tests/test_tflite_runtime.py)
PYTEST=$(grep -o '"pytest==[^"]*"' setup.py | tr -d '"')
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
  if ! { "$python" -m venv --clear "$ROOT/$version" && "$ROOT/$version/bin/pip" install -q -e . "$PYTEST"; } >"$log" 2>&1; then
    summary+=("python$version: install FAILED after $((SECONDS - start)) s, see $log"); status=1; continue
  fi
  installed=$((SECONDS - start))
  if "$ROOT/$version/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" "${SUBSET[@]}" >>"$log" 2>&1; then
    result=passed
  else
    result=FAILED; status=1
  fi
  summary+=("python$version ($("$ROOT/$version/bin/python" -V 2>&1)): install ${installed} s, subset $result in $((SECONDS - start - installed)) s: $(tail -n 1 "$log")")
done
printf '%s\n' "${summary[@]}"
exit $status
