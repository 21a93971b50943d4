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
# Reinstall unless every package imports and r3gan-core is installed (editable) from this very checkout.
installed_here() {
  (cd / && "$PY" - "$PWD_REPO" <<'PYEOF'
import importlib.metadata as md, json, pathlib, sys
try:
    url = json.loads(md.distribution("r3gan-core").read_text("direct_url.json") or "{}").get("url", "")
except md.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if url == pathlib.Path(sys.argv[1]).resolve().as_uri() else 1)
PYEOF
  )
}
PWD_REPO=$(pwd)
if ! "$PY" -c "import importlib, papermill, jupytext, jupyter_book, sklearn, seaborn, ipywidgets, pytest, \
sphinx_exercise, playwright, kornia, xdist, bokeh; importlib.import_module('sphinx-mathjax-offline')" >/dev/null 2>&1 \
   || ! installed_here; then
  echo "[setup] installing r3gan-core with the book, test and augment extras"
  "$PY" -m pip install --quiet -e ".[book,test,augment]"
fi
# torch-fidelity (the `inception` extra) for tests/test_inception_metrics.py, installed with --no-deps: its
# torchvision requirement makes pip replace the pinned CPU torch with torch 2.14 and its CUDA packages (pip install
# --dry-run -e ".[inception]" says so), and the PyPI torchvision does not load with a CPU torch. Its other needs
# (numpy, pillow, tqdm) are already here; the tests lend it an empty torchvision. Without it, those tests skip.
if ! "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch_fidelity') is None)"; then
  echo "[setup] installing torch-fidelity without its dependencies (they would replace torch)"
  "$PY" -m pip install --quiet --no-deps "torch-fidelity>=0.3" \
    || echo "[setup] torch-fidelity could not be installed: the tests that need it skip"
fi
# No kernelspec is installed: ci/run_chapters.py runs the chapters on a "python3" kernelspec of its own (a temporary
# folder first on JUPYTER_PATH), so the user's own kernels are never re-pointed at this interpreter.
# Debian's Chromium for ci/check_book.py (the browser check of every page and explorable), where it is missing and
# this user may install system packages. Elsewhere the check says it has no browser and skips.
if ! command -v chromium >/dev/null 2>&1 && [ "${R3GAN_NO_CHROMIUM:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Debian's chromium for the browser check (R3GAN_NO_CHROMIUM=1 skips this)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[setup] chromium could not be installed: ci/check_book.py will skip"
fi
