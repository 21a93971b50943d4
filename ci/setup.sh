#!/usr/bin/env bash
# Install what is missing for the book and the tests. Safe to run again: it installs nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# A plain `torch` requirement with no torch installed pulls several GB of CUDA packages; install the pinned
# build first (on our CPU machines it comes from a local wheel), so the range in pyproject.toml is met.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing torch==2.13.0"
  "$PY" -m pip install --quiet "torch==2.13.0"
fi
if ! "$PY" -c "import r3gan_core, papermill, jupytext, jupyter_book, sklearn, seaborn, ipywidgets, pytest" >/dev/null 2>&1 \
   || ! "$PY" -m pip show r3gan-core >/dev/null 2>&1; then
  echo "[setup] installing r3gan-core with the book and test extras"
  "$PY" -m pip install --quiet -e ".[book,test]"
fi
"$PY" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
