#!/usr/bin/env bash
# Every edge file in ONE interleaved `edge-lstm bench` run, with PyTorch alongside: the onnxruntime
# files (fp32, dynamic int8, fp16, the phone-NPU graph and its static int8) and the .tflite files in
# LiteRT. Needs the [tflite] extra and the files of `python bench/edge_targets.py` (runs/edge-targets/).
set -euo pipefail
cd "$(dirname "$0")/.."
d=runs/edge-targets
edge-lstm bench $d/model.onnx $d/model.int8.onnx $d/model.fp16.onnx $d/model.mobile.onnx $d/model.mobile.int8.onnx \
  $d/model.tflite $d/model.int8.tflite --torch --batch 64 --min-time 2 --rounds 4 \
  --json-file bench/results/edge_bench.json --csv bench/results/edge_bench.csv
