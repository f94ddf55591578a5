#!/usr/bin/env bash
# Create .venv and install GAN Studio into it (idempotent). Sourced by studio.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# Pinned torch: on the project's machines this takes a local CPU build; an open range could pull a CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install -q "torch==${TORCH_VERSION:-2.13.0}"
fi
# Ray for the scale-out tests, pinned like torch (the package's own extra, ganstudio[ray], stays open)
.venv/bin/pip install -q -e ".[test]" "ray==${RAY_VERSION:-2.60.0}"
