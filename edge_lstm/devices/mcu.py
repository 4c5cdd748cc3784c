"""Microcontrollers as devices: `qemu:MACHINE` (QEMU's MPS2 boards: mps2-an386 a Cortex-M4F,
mps2-an500 a Cortex-M7, mps2-an385 a Cortex-M3) and `serial://PORT?board=NAME` (a real board running
edge-lstm's firmware, `&baud=N`, `&pyocd=TARGET` to flash it first); both take `?timeout=S` (the
seconds one answer may take, 60 by default). They run C, not edge-lstm's CLI:
this side builds the firmware (edge_lstm.mcu) and sends the test set through its UART.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edge_lstm.devices.targets import Device
from edge_lstm.errors import ConfigError

KINDS = ("qemu", "serial")
BENCH_CASES = 20  # inferences per variant whose median bench reports (QEMU's counts are deterministic)


def is_mcu(device: Device) -> bool:
    return device.kind in KINDS


def mcu_device(device: Device) -> Any:
    """The device's McuDevice (board, port) from its URL."""
    from edge_lstm.mcu.boards import board
    from edge_lstm.mcu.run import McuDevice

    parts = urlsplit(device.url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    try:
        timeout = float(query.get("timeout", "60"))
    except ValueError:
        raise ConfigError(f"{device.url}: timeout is not a number of seconds") from None
    if device.kind == "qemu":
        return McuDevice(device.name, board(parts.path), timeout=timeout)
    if "board" not in query:
        raise ConfigError(
            f"{device.url}: a board over serial needs ?board=NAME (its CPU, flash and RAM), e.g. ?board=nucleo-f401re"
        )
    try:
        baud = int(query.get("baud", "115200"))
    except ValueError:
        raise ConfigError(f"{device.url}: baud is not a number") from None
    return McuDevice(
        device.name, board(query["board"]), port=parts.path, baud=baud, pyocd=query.get("pyocd"), timeout=timeout
    )


def mcu_info(device: Device, check: bool = False) -> dict[str, Any]:
    """What the microcontroller is, and the tools this machine has for it (check: missing ones are an error)."""
    import shutil
    import subprocess

    from edge_lstm.mcu.run import ready

    target = mcu_device(device)
    if check:
        ready(target)
    gcc = shutil.which("arm-none-eabi-gcc")
    info = target.describe() if shutil.which("qemu-system-arm") or not target.emulated else {"emulated": True}
    info.update(
        device=device.name,
        architecture=f"{target.board.cpu} (Armv7-M)",
        board=target.board.name,
        about=target.board.about,
        flash_kb=target.board.flash // 1024,
        ram_kb=target.board.ram // 1024,
        port=target.port,
        arm_gcc=subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True).stdout.strip() if gcc else None,
    )
    return info


def _arch(model: Path) -> Any:
    import json

    from edge_lstm.arch import Arch

    if not model.exists():
        raise ConfigError(f"{model}: no such model file; export one with `edge-lstm export` (a C library: --mcu DIR)")
    if model.is_dir():
        from edge_lstm.mcu.firmware import manifest

        return Arch.from_json(json.dumps(manifest(model)["arch"]))
    from edge_lstm.runtime.model_info import file_arch

    arch = file_arch(model)
    if arch is None:
        raise ConfigError(f"{model}: no architecture in its metadata; export it again with `edge-lstm export`")
    return arch


def test_cases(model: Path, limit: int | None, data: Path | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(x, lengths or None, labels): MNIST's test images (pixel / 255) or the model's test sequences."""
    from edge_lstm.data import mnist, sequences

    arch = _arch(model)
    if arch.image:
        test = mnist.load_split(mnist.locate(None), "test")
        n = limit or len(test.labels)
        return test.images[:n].astype(np.float32) / 255, None, test.labels[:n]
    seqs = sequences.for_model(data, arch, model, limit)
    lengths = None if arch.steps is not None else seqs.lengths
    return seqs.x.astype(np.float32), lengths, seqs.labels


def eval_on_mcu(
    device: Device, model: Path, limit: int | None, data: Path | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    from edge_lstm.mcu.run import evaluate

    target = mcu_device(device)
    x, lengths, labels = test_cases(model, limit, data)
    rows = evaluate(target, model, x, lengths, labels, progress)
    return {"device": device.name, "device_info": target.describe(), "model": str(model), "variants": rows}


def bench_on_mcu(device: Device, model: Path, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    from edge_lstm.mcu.run import bench

    target = mcu_device(device)
    arch = _arch(model)
    if arch.image:
        x, lengths, _ = test_cases(model, BENCH_CASES, None)
    else:  # costs do not depend on the values: random sequences of the trained length (100 rows if any)
        x = np.random.default_rng(0).standard_normal((BENCH_CASES, arch.steps or 100, arch.features)).astype(np.float32)
        lengths = None
    return bench(target, model, x, lengths, progress)
