#!/usr/bin/env bash
# For a session lent a GPU machine (see ../shared/notes/device.md): one prepared run that checks the
# CUDA path and benchmarks it, writing everything under $OUT. Installs nothing from the network:
# onnxruntime-gpu must already be importable (the machine's own, or wheels carried in .site).
# Needs runs/latest/model.pt or export/*.onnx carried along (they are git-ignored).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
{
  python3 -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())"
  nvidia-smi -L
  python3 -m edge_lstm providers
  python3 -m edge_lstm inspect export/model.onnx --provider cuda
  python3 -m pytest -q tests/test_runtime.py -k "cuda or io_binding" -p no:cacheprovider
  python3 -m edge_lstm bench export/model.onnx export/model.fp16.onnx --provider cpu,cuda --torch \
    --batch 1024 --min-time 3 --json-file "$OUT/gpu_bench.json" --csv "$OUT/gpu_bench.csv" --plot "$OUT/gpu_bench.png"
} 2>&1 | tee "$OUT/gpu_check.log"
