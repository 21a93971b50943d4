#!/usr/bin/env bash
# Everything a lent GPU should do, in one command (run from the repository root on a machine with CUDA):
#   1. the iteration benchmark at the cifar10 preset (bf16 autocast, channels_last), with and without R1 + R2,
#      the penalty overhead and the trainer / bare ratio printed;
#   2. the gpu profile of every image chapter, published to results/<chapter>/gpu/.
# Results and logs go to ${OUT:-runs/gpu_session}/. `--dry-run` does the same on a CPU with tiny sizes (the
# digits8 preset, smoke chapters, nothing published), so the script cannot rot: tests/test_gpu_session.py runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/gpu_session}
mkdir -p "$OUT"
if [[ "${1:-}" == "--dry-run" ]]; then
  BENCH=(--device cpu --presets digits8 --batch 8 --iters 1 --warmup 0 --threads 1)
  CHAPTERS=(--profile smoke --only config_e)
  PUBLISH=()
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run with --dry-run on a CPU')"
  BENCH=(--device cuda --presets cifar10 --batch 64 --iters 20 --warmup 5 --conditional)
  CHAPTERS=(--profile gpu)
  PUBLISH=(--publish)
fi
echo "[gpu_session] benchmark"
"$PY" benchmarks/bench_iteration.py --configs A B C D E "${BENCH[@]}" --penalty-overhead --trainer \
  --json "$OUT/bench.json" | tee "$OUT/bench.txt"
echo "[gpu_session] chapters"
"$PY" ci/run_chapters.py "${CHAPTERS[@]}" --out "$OUT/chapters" "${PUBLISH[@]}" | tee "$OUT/chapters.txt"
echo "[gpu_session] done: $OUT"
