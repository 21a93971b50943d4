#!/usr/bin/env bash
# Run the tests: install what is missing, then pytest (unit tests and every chapter in the smoke profile).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash ci/setup.sh
"$PY" -m pytest -q "$@"
