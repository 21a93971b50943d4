#!/usr/bin/env bash
# Run the tests: install what is missing, then pytest on every core (pytest-xdist).
#   bash ci/test.sh           the quick suite: every unit test, every chapter in the smoke profile, the book built
#                             from them, and one stored run per chapter re-derived from its weights
#   bash ci/test.sh --full    all of that and every stored number re-derived (what .ci/run calls)
# Further arguments go to pytest (e.g. bash ci/test.sh tests/test_losses.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SELECT=(-m "not full")
if [ "${1:-}" = "--full" ]; then
  SELECT=()
  shift
fi
bash ci/setup.sh
# One BLAS / OpenMP thread per worker: the workers already fill the cores, and threads spin-waiting for a busy
# core cost more than they give (the tests set torch's own thread count to 1 as well).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
  MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
"$PY" -m pytest -q -n "${R3GAN_TEST_WORKERS:-auto}" --dist loadgroup "${SELECT[@]}" "$@"
