#!/usr/bin/env bash
# Anytime prediction: test accuracy after k of 28 rows, for the default model and for one trained
# with the extra per-row loss (--anytime 0.5). Needs runs/latest/model.pt (edge-lstm train).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
edge-lstm export --streaming
edge-lstm eval --streaming --json --plot "$out/streaming_accuracy_vs_rows.png" | tail -1 > "$out/streaming_curve.json"
edge-lstm train --anytime 0.5 --out runs/anytime --json | tail -1 > "$out/train_anytime.json"
edge-lstm export export/step_anytime.onnx --streaming --checkpoint runs/anytime/model.pt
edge-lstm eval export/step_anytime.onnx --streaming --json --plot "$out/streaming_anytime_accuracy_vs_rows.png" \
  | tail -1 > "$out/streaming_curve_anytime.json"
