"""Microcontrollers: the default MNIST model and a BasicMotions gesture model as edge-lstm's C library
on QEMU's Cortex-M4F (mps2-an386) and Cortex-M7 (mps2-an500), beside TensorFlow Lite Micro + CMSIS-NN.

    python bench/mcu.py [--checkpoint runs/latest/model.pt]   # -> bench/results/mcu.json (~8 min here)

Through the commands a user runs: `edge-lstm train` (the default recipe; BasicMotions: `--data`),
`export --int8 --mcu DIR --board ...`, then `eval --on` each QEMU board on the WHOLE test set (10,000
images through the firmware, for both variants) and `bench --on` it (instructions per inference and
per streaming step, flash and RAM). onnxruntime's fp32 and int8 files are evaluated here beside.

TFLM + CMSIS-NN's numbers are those measured on the same QEMU board for the same architecture in
../shared/notes/mcu.md (TFLM's make build fetches its dependencies from GitHub, which CI cannot reach;
`export --tflite-micro` writes the TFLM file and checks it with the tflite-micro wheel). Costs are
instructions (QEMU -icount), never cycles: QEMU models no pipeline or memory timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_lstm.environment import describe  # noqa: E402
from edge_lstm.fileio import atomic_write_text  # noqa: E402

SERIES = ROOT / "data" / "series"
BOARDS = {"m4": "qemu:mps2-an386", "m7": "qemu:mps2-an500"}
# ../shared/notes/mcu.md, measured 2026-12-07 on mps2-an386 (QEMU 7.2, -icount shift=0), the default MNIST
# architecture (FC 28->64, LSTM 128, FC 128->10), TFLM + CMSIS-NN built from their sources, int8 (8x8_16)
TFLM_CMSIS_NN = {
    "flash_firmware_bytes": 202_032,  # ELF text: model 88 KB, TFLM + libc ~98 KB, 15.7 KB of test images
    "ram_arena_bytes": 11_668,
    "instructions_per_inference": 6_140_000,
    "accuracy_wheel_10000": 0.9928,  # the tflite-micro wheel on the 10,000 test images (bit-identical to the M4 build)
}


def cli(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "edge_lstm", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"edge-lstm {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done.stdout


def last_json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


def one_model(name: str, onnx: Path, mcu: Path, data: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"model": name}
    for board, url in BOARDS.items():
        t0 = time.perf_counter()
        evaluated = last_json(cli("eval", "--on", url, str(onnx), *data, "--json"))
        bench_file = Path(tempfile.mkdtemp()) / "bench.json"
        cli("bench", str(onnx), "--on", url, "--json-file", str(bench_file))
        benched = json.loads(bench_file.read_text())["mcu"]
        result[board] = {
            "device": evaluated["device_info"],
            "eval": evaluated["variants"],
            "bench": benched,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        for v in evaluated["variants"]:
            print(
                f"{name} {board} {v['variant']}: {100 * v['accuracy_there']:.2f}% on {v['n']} "
                f"(same class as {v['reference']} {v['same_class']}/{v['n']})"
            )
        for r in benched:
            print(
                f"{name} {board} {r['variant']}: {r['per_inference'] / 1e6:.2f} M instructions, step "
                f"{r['per_step'] / 1e3:.1f} k, flash {r['flash']:,} B, RAM {r['ram']:,} B"
            )
    for variant in ("fp32", "int8"):
        path = onnx if variant == "fp32" else onnx.with_suffix(".int8.onnx")
        if path.is_file():
            result[f"onnxruntime_{variant}"] = last_json(cli("eval", str(path), *data, "--json"))["accuracy"]
    result["library_files"] = {v: sorted(p.name for p in (mcu / v).iterdir()) for v in ("fp32", "int8")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="An MNIST checkpoint (default: train one, the default recipe).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mcu.json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edge-lstm-mcu-bench-"))
    report: dict[str, Any] = {"environment": describe(), "tflm_cmsis_nn_m4": TFLM_CMSIS_NN, "models": []}
    report["environment"]["qemu"] = subprocess.run(
        ["qemu-system-arm", "--version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    report["environment"]["arm_gcc"] = subprocess.run(
        ["arm-none-eabi-gcc", "--version"], capture_output=True, text=True
    ).stdout.split("\n")[0]

    checkpoint = args.checkpoint
    if checkpoint is None:
        t0 = time.perf_counter()
        cli("train", "--out", str(tmp / "mnist"))
        checkpoint = tmp / "mnist" / "model.pt"
        report["mnist_train_seconds"] = round(time.perf_counter() - t0, 1)  # alone on the machine, or not quoted
    onnx = tmp / "model.onnx"
    cli(
        "export", str(onnx), "--checkpoint", str(checkpoint), "--int8", "--mcu", str(tmp / "mnist-mcu"), "--board", "m4"
    )
    report["models"].append(one_model("MNIST (LSTM 128)", onnx, tmp / "mnist-mcu", []))
    try:  # TFLM's file of the same model, checked in the tflite-micro wheel: its size, arena and accuracy
        cli("export", str(tmp / "tflm.onnx"), "--checkpoint", str(checkpoint), "--tflite-micro")
        report["tflite_micro_same_model"] = json.loads((tmp / "tflm.tflm" / "model.json").read_text())
        print(
            f"TFLM file of the same model: {report['tflite_micro_same_model']['file_bytes']:,} B, arena "
            f"{report['tflite_micro_same_model']['arena_bytes']:,} B"
        )
    except RuntimeError as e:
        report["tflite_micro_same_model"] = {"not measured": str(e)}

    train = ["--data", str(SERIES / "BasicMotions_TRAIN.ts"), "--test-data", str(SERIES / "BasicMotions_TEST.ts")]
    cli("train", *train, "--out", str(tmp / "motions"))
    motions = tmp / "motions.onnx"
    cli(
        "export",
        str(motions),
        "--checkpoint",
        str(tmp / "motions" / "model.pt"),
        "--int8",
        "--mcu",
        str(tmp / "motions-mcu"),
        "--board",
        "nucleo-f401re",
    )
    test = ["--data", str(SERIES / "BasicMotions_TEST.ts")]
    report["models"].append(
        one_model("BasicMotions (LSTM, 6 features x 100 steps)", motions, tmp / "motions-mcu", test)
    )

    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
