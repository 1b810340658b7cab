#!/usr/bin/env bash
# The checks that need a GPU, in one go, wherever one is at hand (docs/speed.md, GPU):
# the tests marked `gpu`, then convae-bench on the GPU for both tutorial networks at
# batch 200 and at the whole bundled training split (4,000) in one batch.
# Figures and logs go to $OUT (default gpu-check/); copy the numbers into docs/bench-notes.md (GPU).
#   scripts/gpu-check.sh            # uses .venv/bin (make install first)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
if ! "$BIN/python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu-check: no CUDA GPU visible to torch; nothing to check here" >&2
    exit 2
fi
nvidia-smi | tee "$OUT/nvidia-smi.txt"
"$BIN/python" -m pytest -m gpu -q -ra tests 2>&1 | tee "$OUT/pytest.txt"
for experiment in seed_autoencoder seed_denoiser; do
    for batch in 200 4000; do
        "$BIN/convae-bench" --json "$OUT/bench-$experiment-batch$batch.json" trainer=gpu \
            data.source=bundled "experiment=$experiment" "data.batch_size=$batch" \
            2>&1 | tee "$OUT/bench-$experiment-batch$batch.txt"
    done
done
