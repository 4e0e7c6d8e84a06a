#!/usr/bin/env bash
# The model tests on Keras' JAX backend (CPU), in a JAX venv kept outside the clone.
#
#   bash .ci/jax_backend.sh            # make or reuse the venv, run the fast model subset
#   bash .ci/jax_backend.sh -k fit     # extra arguments go to pytest
#
# The venv lives in ${KERAS_VIT_JAX_VENV:-$HOME/.cache/keras_vit/jax-venv}; a stamp file holding the
# requirement line below makes a second run skip the install (a new pin makes a new venv).
# Measured on 2 shared cores: see benchmarks/RESULTS.md ("Backends").
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# jax 0.10.2 is the newest CPU jax for Python 3.11 on PyPI; keras, numpy and pillow are setup.py's pins.
REQUIREMENTS="jax==0.10.2 jaxlib==0.10.2 keras==3.15.1 numpy==2.4.6 pillow==13.0.0 pytest==9.0.3"
VENV="${KERAS_VIT_JAX_VENV:-$HOME/.cache/keras_vit/jax-venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ "$(cat "$VENV/.keras_vit_stamp" 2>/dev/null)" != "$REQUIREMENTS" ]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q $REQUIREMENTS
    echo "$REQUIREMENTS" > "$VENV/.keras_vit_stamp"
fi
# This clone, without its TensorFlow-side dependencies (setup.py's install_requires name TensorFlow).
"$VENV/bin/pip" install -q --no-deps -e .

export KERAS_BACKEND=jax
export KERAS_VIT_DATA="${KERAS_VIT_DATA:-$(cd .. && pwd)/shared/data}"
"$VENV/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider \
    tests/test_layers.py tests/test_model.py tests/test_model_contract.py tests/test_backends.py "$@"
