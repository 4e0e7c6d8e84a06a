#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): keras_vit on Keras' JAX backend beside timm, one table,
# benchmarks/results/gpu_*.json (and a copy in $OUT). At most 8 minutes on the device.
#
# The device image has JAX (CUDA), PyTorch, timm and numpy but no Keras and no registry, so Keras travels
# as wheels in .whl/ (ignored by git). Fill it here once, for the device's Python (3.11-3.13 covered):
#
#   for v in 3.11 3.12 3.13; do pip download -q --no-deps --only-binary=:all: --python-version $v \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex==0.1.0 \
#       optree==0.20.0 absl-py==2.5.1 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 \
#       h5py==3.14.0; done                                  # 20 MB of the 64 MiB a run may carry
#
# then run it on the device, carrying .whl:   bash benchmarks/gpu_check.sh          (timeout_s 540)
# and the dry run here, tiny sizes on the CPU: bash benchmarks/gpu_check.sh --tiny
#   (Keras from the JAX venv of .ci/jax_backend.sh, torch + timm from this clone's .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # peak memory per row, and room for the torch rows
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # keras_vit from this tree, no install

if [[ " $* " == *" --tiny "* ]]; then
    PYTHON="${PYTHON:-${KERAS_VIT_JAX_VENV:-$HOME/.cache/keras_vit/jax-venv}/bin/python}"
    TORCH_PYTHON="${TORCH_PYTHON:-.venv/bin/python}"
    export JAX_PLATFORMS=cpu
else
    PYTHON="${PYTHON:-python3}"
    TORCH_PYTHON="${TORCH_PYTHON:-$PYTHON}"
    SITE="${TMPDIR:-/tmp}/keras_vit_site"
    if ! "$PYTHON" -c "import keras" 2>/dev/null; then
        ls .whl/*.whl >/dev/null 2>&1 || { echo "error: no wheels in .whl/ (see the top of $0)" >&2; exit 2; }
        "$PYTHON" -m pip install -q --no-index --no-deps --target "$SITE" --find-links .whl \
            keras namex optree absl-py rich markdown-it-py mdurl pygments h5py
        export PYTHONPATH="$PYTHONPATH:$SITE"
    fi
    "$PYTHON" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), '| keras', keras.__version__)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PYTHON" benchmarks/gpu_check.py --torch-python "$TORCH_PYTHON" "$@"
