#!/usr/bin/env bash
# This machine and the emulated aarch64 device in ONE bench run, and the test set's classes there
# against here (bench/arm64_device.sh must be up, and `edge-lstm device setup` done on it).
#
#   bash bench/devices.sh   # -> bench/results/devices.json, devices.png, devices_eval.json (about 10 minutes)
#
# The emulated device's timings are QEMU's, not an Arm CPU's: what it shows is that the aarch64 wheels
# install, every portable file loads and runs there, and gives the classes it gives here.
set -euo pipefail
cd "$(dirname "$0")/.."
# Named once in the devices file, as a user names a board, so the table's device column reads "arm64".
edge-lstm device add arm64 "$(bash bench/arm64_device.sh url)" >/dev/null
edge-lstm bench export/model.onnx export/model.int8.onnx export/model.mobile.onnx --streaming export/step.onnx \
  --on local --on arm64 --scenario single-stream --min-count 100 --min-time 3 --rounds 3 --profile \
  --json-file bench/results/devices.json --plot bench/results/devices.png
edge-lstm eval export/model.onnx --on arm64 --json | tail -1 > bench/results/devices_eval.json
