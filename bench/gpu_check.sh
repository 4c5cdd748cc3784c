#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (../shared/notes/device.md has the carry recipe):
#   1. joins the onnxruntime-gpu wheel carried in pieces (/tmp/parts/part0..N-1 + .gpuwheelN/partN),
#      checks its sha256 and installs it into /tmp/site (no network there);
#   2. trains on CUDA (the default recipe), exports fp32/fp16/int8 + the step model;
#   3. runs the CUDA tests and the placement/fallback checks;
#   4. benches cpu and cuda, plain and with CUDA graphs, fp16, against PyTorch eager and CUDA graph;
# writing gpu_check.log, gpu_bench.json/.csv/.png and the run's metrics under $OUT.
# Usage (from the repository root, on the device): bash bench/gpu_check.sh (WHEEL_NAME/WHEEL_SHA for another wheel)
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
# The wheel that worked on the H100 image (Python 3.12, CUDA 13): ../shared/notes/device.md
WHEEL_NAME=${WHEEL_NAME:-onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl}
WHEEL_SHA=${WHEEL_SHA:-05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7}
W=/tmp/$WHEEL_NAME
log() { echo; echo "=== $* [$(date +%T)]"; }
{
log "onnxruntime-gpu wheel"
if ! python3 -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
  last=$(ls -d .gpuwheel*/ 2>/dev/null | sort | tail -1)
  cat /tmp/parts/part* "${last}"part* > "$W"
  echo "$WHEEL_SHA  $W" | sha256sum -c - || exit 3
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$W" || exit 4
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
[ -d ../shared/datasets/mnist ] && cp ../shared/datasets/mnist/*.gz data/mnist/ 2>/dev/null
log env
nvidia-smi -L; nproc
python3 -c "import onnxruntime as o, torch; print('onnxruntime', o.__version__, o.get_available_providers()); print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m edge_lstm providers --check
log "train on cuda (default recipe)"
python3 -m edge_lstm train --device cuda --json | tail -4
log "export (fp32, fp16, int8, step)"
python3 -m edge_lstm export --int8 --fp16 && python3 -m edge_lstm export --streaming
log "inspect on cuda; eval on cuda"
python3 -m edge_lstm inspect export/model.onnx --provider cuda | tail -4
for m in model.onnx model.fp16.onnx; do python3 -m edge_lstm eval "export/$m" --provider cuda | head -1; done
python3 -m edge_lstm eval export/model.int8.onnx --provider cuda 2>&1 | head -1  # refused: CPU-only LSTM
log "CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/runtime tests/test_environment.py -k "cuda or device or provider or environment" 2>&1 | tail -5
log "bench: cpu and cuda; cuda plain and CUDA graph; fp16; PyTorch eager and CUDA graph"
python3 -m edge_lstm bench export/model.onnx export/model.fp16.onnx --provider cpu,cuda --torch --batch 1024 \
  --streaming export/step.onnx --min-time 2 --rounds 3 --json-file "$OUT/gpu_bench.json" --csv "$OUT/gpu_bench.csv" \
  --plot "$OUT/gpu_bench.png" | tail -40
python3 -m edge_lstm bench export/model.onnx --provider cuda --no-cuda-graph --torch --batch 1024 --min-time 2 \
  --rounds 3 --json-file "$OUT/gpu_bench_nograph.json" | tail -12
log done
} 2>&1 | tee "$OUT/gpu_check.log"
cp runs/latest/metrics.jsonl "$OUT/" 2>/dev/null || true
