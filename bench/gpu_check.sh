#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (../shared/notes/device.md has the carry recipe; the
# machine has no network, so wheels travel in pieces that earlier calls copied to /tmp/parts and
# /tmp/ovwheels, or that this call carries in .gpuwheelN/ and .ovwheel*/ folders):
#   1. joins the onnxruntime-gpu wheel, checks its sha256 and installs it into /tmp/site;
#   2. trains on CUDA (the default recipe), exports fp32/fp16/int8 + the step model;
#   3. runs the CUDA tests and the placement/fallback checks;
#   4. benches cpu and cuda, plain and with CUDA graphs, fp16, against PyTorch eager and CUDA graph;
#   5. where the OpenVINO plugin wheels came too (the machine's CPU is an Intel Xeon): installs the
#      stock onnxruntime + onnxruntime-ep-openvino into /tmp/ovsite and runs the OpenVINO tests,
#      bench/openvino_check.py (option sets, test set) and bench --provider cpu,openvino (f32, bf16).
# Writes under $OUT (8 files at most come back): gpu_check.log, gpu_bench.json/.png,
# gpu_bench_nograph.json, metrics.jsonl, openvino_check.json, openvino_bench.json, openvino_bench_bf16.json.
# Usage (from the repository root, on the device): bash bench/gpu_check.sh
# STEPS picks parts (default "gpu tests openvino"); "tests openvino" reruns the checks on carried
# export/model.onnx and export/model.fp16.onnx without training.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/parts /tmp/ovwheels
ROOT=$PWD
# The wheel that worked on the H100 image (Python 3.12, CUDA 13): ../shared/notes/device.md
WHEEL_NAME=${WHEEL_NAME:-onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl}
WHEEL_SHA=${WHEEL_SHA:-05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7}
OV_SHAS="99e1074c4b2197accd5073052a465361be17b89c093b8ffb6e6bd8f986c52df8  onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_x86_64.whl
3832643158c8c187fcab6db661cde2a8c06a2b3559d95d0f2411ac0e51c5e924  onnxruntime_ep_openvino-1.8.1-py3-none-manylinux_2_28_x86_64.whl"
BF16='{"CPU":{"INFERENCE_PRECISION_HINT":"bf16"}}'
STEPS=${STEPS:-gpu tests openvino}
want() { [[ " $STEPS " == *" $1 "* ]]; }
W=/tmp/$WHEEL_NAME
log() { echo; echo "=== $* [$(date +%T)]"; }
{
log "onnxruntime-gpu wheel"
cp .gpuwheel*/part* /tmp/parts/ 2>/dev/null
cp .ovwheel*/*.whl /tmp/ovwheels/ 2>/dev/null
ls -la /tmp/parts /tmp/ovwheels
if ! python3 -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
  cat /tmp/parts/part? > "$W"
  echo "$WHEEL_SHA  $W" | sha256sum -c - || exit 3
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$W" || exit 4
  export PYTHONPATH=/tmp/site:$ROOT
else
  export PYTHONPATH=$ROOT
fi
log env
nvidia-smi -L; nproc; grep -m1 "model name" /proc/cpuinfo; grep -o -m1 "amx_bf16\|avx512_bf16" /proc/cpuinfo | sort -u
python3 -c "import onnxruntime as o, torch; print('onnxruntime', o.__version__, o.get_available_providers()); print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 120 python3 -m edge_lstm providers --check
if want gpu; then
log "train on cuda (default recipe)"
t0=$SECONDS; timeout 300 python3 -m edge_lstm train --device cuda --json | tail -3; echo "train wall $((SECONDS - t0)) s"
log "export (fp32, fp16, int8, step)"
timeout 180 python3 -m edge_lstm export --int8 --fp16 && timeout 120 python3 -m edge_lstm export --streaming
log "inspect on cuda; eval on cuda"
timeout 60 python3 -m edge_lstm inspect export/model.onnx --provider cuda | tail -6
for m in model.onnx model.fp16.onnx step.onnx; do
  s=""; [ $m = step.onnx ] && s="--streaming"
  timeout 90 python3 -m edge_lstm eval "export/$m" --provider cuda $s | head -2
done
timeout 60 python3 -m edge_lstm eval export/model.int8.onnx --provider cuda 2>&1 | head -1  # refused: CPU-only LSTM
fi
if want tests; then
log "CUDA tests"
timeout 300 python3 -m pytest -q -p no:cacheprovider -rs --tb=short tests/runtime tests/test_environment.py \
  -k "cuda or device or provider or environment" 2>&1 | tail -40
fi
if want gpu; then
log "bench: cpu and cuda; cuda plain and CUDA graph; fp16; PyTorch eager and CUDA graph"
if ! timeout 330 python3 -m edge_lstm bench export/model.onnx export/model.fp16.onnx --provider cpu,cuda --torch \
  --batch 1024,8192 --streaming export/step.onnx --min-time 2 --rounds 3 --json-file "$OUT/gpu_bench.json" \
  --plot "$OUT/gpu_bench.png" | tail -50; then
  log "bench with --torch failed: the ORT rows alone"  # so that one broken target does not cost the whole run
  timeout 200 python3 -m edge_lstm bench export/model.onnx export/model.fp16.onnx --provider cpu,cuda --batch 1024,8192 \
    --streaming export/step.onnx --min-time 1 --rounds 3 --json-file "$OUT/gpu_bench.json" | tail -30
fi
timeout 150 python3 -m edge_lstm bench export/model.onnx --provider cuda --no-cuda-graph --torch --batch 1024 --min-time 2 \
  --rounds 3 --json-file "$OUT/gpu_bench_nograph.json" | tail -14
cp runs/latest/metrics.jsonl "$OUT/" 2>/dev/null
fi

if want openvino && ls /tmp/ovwheels/*.whl >/dev/null 2>&1; then
  log "OpenVINO plugin on this CPU (stock onnxruntime 1.32.0 + onnxruntime-ep-openvino)"
  (cd /tmp/ovwheels && echo "$OV_SHAS" | sha256sum -c -) || exit 5
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/ovsite /tmp/ovwheels/*.whl || exit 6
  export PYTHONPATH=/tmp/ovsite:$ROOT
  python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.__file__)"
  timeout 120 python3 -m edge_lstm providers --check
  timeout 300 python3 bench/openvino_check.py export/model.onnx --out "$OUT/openvino_check.json"
  timeout 60 python3 -m edge_lstm inspect export/model.onnx --provider openvino | tail -6
  timeout 120 python3 -m edge_lstm eval export/model.onnx --provider openvino | head -2
  timeout 120 python3 -m edge_lstm eval export/model.fp16.onnx --provider openvino 2>&1 | head -2
  timeout 300 python3 -m pytest -q -p no:cacheprovider -rs --tb=short tests/runtime/test_providers.py 2>&1 | tail -30
  log "bench cpu,openvino (f32) with PyTorch CPU"
  timeout 300 python3 -m edge_lstm bench export/model.onnx --provider cpu,openvino --torch --batch 1024 --min-time 1 \
    --rounds 3 --json-file "$OUT/openvino_bench.json" | tail -16
  log "bench openvino, bf16 inference precision (load_config)"
  timeout 200 python3 -m edge_lstm bench export/model.onnx --provider openvino --batch 1024 --min-time 1 --rounds 3 \
    --provider-option "load_config=$BF16" --json-file "$OUT/openvino_bench_bf16.json" 2>&1 | tail -10
fi
log done
} 2>&1 | tee "$OUT/gpu_check.log"
