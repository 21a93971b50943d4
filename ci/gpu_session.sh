#!/usr/bin/env bash
# Everything a lent GPU should do, in one command (run from the repository root on a machine with CUDA):
#   1. the iteration benchmark at the cifar10 preset (bf16 autocast, channels_last), with and without R1 + R2:
#      the bare and the trainer's penalty overhead and the trainer / bare ratio printed;
#   2. tests/test_cuda_sync.py (the trainer's steps never wait for the device between checks) and tests/test_conv.py
#      (networks.conv's backward equals PyTorch's, on the GPU too);
#   3. benchmarks/profile_cost.py: every image chapter's gpu profile probed and its total projected;
#   4. the gpu profile of every image chapter, published to results/<chapter>/gpu/ (skipped with --no-chapters:
#      it needs papermill and jupytext, and hours of GPU time - step 3 says how many).
# Results and logs go to ${OUT:-runs/gpu_session}/. `--dry-run` does the same on a CPU with tiny sizes (the
# digits8 preset, smoke chapters, nothing published), so the script cannot rot: tests/test_gpu_session.py runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/gpu_session}
DRY=0; CHAPTERS_TOO=1
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --no-chapters) CHAPTERS_TOO=0 ;;
    *) echo "gpu_session.sh: unknown option '$arg'; valid: --dry-run, --no-chapters" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
if [[ $DRY == 1 ]]; then
  BENCH=(--device cpu --presets digits8 --batch 8 --iters 1 --warmup 0 --threads 1)
  COST=(--profile smoke --device cpu --probe-steps 2 --chapters config_e biggan)
  CHAPTERS=(--profile smoke --only config_e)
  PUBLISH=()
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run with --dry-run on a CPU')"
  BENCH=(--device cuda --presets cifar10 --batch 64 --iters 20 --warmup 5 --conditional)
  COST=(--profile gpu --device cuda --probe-steps 60)
  CHAPTERS=(--profile gpu)
  PUBLISH=(--publish)
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "[gpu_session] benchmark"
"$PY" benchmarks/bench_iteration.py --configs A B C D E "${BENCH[@]}" --penalty-overhead --trainer \
  --json "$OUT/bench.json" | tee "$OUT/bench.txt"
echo "[gpu_session] no host synchronisation between checks; convolution backward equals the reference"
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_sync.py tests/test_conv.py | tee "$OUT/sync.txt"
echo "[gpu_session] cost of each chapter's profile"
"$PY" benchmarks/profile_cost.py "${COST[@]}" --json "$OUT/cost.json" | tee "$OUT/cost.txt"
if [[ $CHAPTERS_TOO == 1 ]]; then
  echo "[gpu_session] chapters"
  "$PY" ci/run_chapters.py "${CHAPTERS[@]}" --out "$OUT/chapters" "${PUBLISH[@]}" | tee "$OUT/chapters.txt"
fi
echo "[gpu_session] done: $OUT"
