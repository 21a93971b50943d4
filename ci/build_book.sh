#!/usr/bin/env bash
# Build the book: install what is missing, execute every chapter with papermill, render HTML.
#   bash ci/build_book.sh            # each chapter in its book profile: cpu (image chapters render results/ without training)
#   PROFILE=smoke bash ci/build_book.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash ci/setup.sh
# Two chapters side by side (JOBS=1 for one at a time): the image chapters render stored results, so the book's
# chapters are short and a machine's two cores halve the wall time.
"$PY" ci/run_chapters.py --profile "${PROFILE:-book}" --out book/executed --jobs "${JOBS:-2}"
# The "Reproduce this book" page, generated from results/ and the runner's timings (book/reproduce.md, git-ignored).
"$PY" ci/reproduce_page.py --executed book/executed --out book/reproduce.md
# Through the interpreter, not the `jupyter-book` script: a fresh pyenv or venv may not have it on PATH yet.
"$PY" -c "from jupyter_book.cli.main import main; main()" build . --builder html
echo "[build_book] open _build/html/index.html; check it in a browser: python ci/check_book.py"
