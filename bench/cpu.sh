#!/usr/bin/env bash
# The bench README's main table in ONE interleaved run of `edge-lstm bench`:
# PyTorch eager vs onnxruntime fp32 vs dynamic int8, batch 1 and 1024, 1 and 2 intra-op threads.
# Needs a trained checkpoint (edge-lstm train) and the exported models (edge-lstm export --int8).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
edge-lstm bench export/model.onnx export/model.int8.onnx --torch \
  --batch 1024 --threads 1,2 --min-time 3 --rounds 4 \
  --json-file "$out/cpu.json" --csv "$out/cpu.csv" --plot "$out/cpu.png"
