"""Microcontrollers as devices: `qemu:MACHINE` (QEMU's MPS2 boards: mps2-an386 a Cortex-M4F,
mps2-an500 a Cortex-M7, mps2-an385 a Cortex-M3) and `serial://PORT?board=NAME` (a real board running
edge-lstm's firmware, `&baud=N`, `&pyocd=TARGET` to flash it first); both take `?timeout=S` (the
seconds one answer may take, 60 by default). They run C, not edge-lstm's CLI:
this side builds the firmware (edge_lstm.mcu) and sends the test set through its UART.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edge_lstm.errors import ConfigError

KINDS = ("qemu", "serial")
BENCH_CASES = 20  # inferences per variant whose median bench reports (QEMU's counts are deterministic)


class Named(Protocol):
    """A device as targets.py holds it (this module is also what targets.py checks URLs with)."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def kind(self) -> str: ...


def is_mcu(device: Named) -> bool:
    return device.kind in KINDS


def mcu_device(name: str, url: str) -> Any:
    """The McuDevice (board, port, options) a `qemu:` or `serial://` URL names; ConfigError in one line."""
    from edge_lstm.mcu.boards import board
    from edge_lstm.mcu.run import McuDevice

    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    try:
        timeout = float(query.get("timeout", "60"))
        baud = int(query.get("baud", "115200"))
    except ValueError:
        raise ConfigError(f"{url}: timeout and baud are numbers (seconds, bits per second)") from None
    if parts.scheme == "qemu":
        return McuDevice(name, board(parts.path), timeout=timeout)
    if "board" not in query:
        raise ConfigError(
            f"{url}: a board over serial needs ?board=NAME (its CPU, flash and RAM), e.g. ?board=nucleo-f401re"
        )
    return McuDevice(name, board(query["board"]), port=parts.path, baud=baud, pyocd=query.get("pyocd"), timeout=timeout)


def mcu_info(device: Named, check: bool = False) -> dict[str, Any]:
    """What the microcontroller is, and the tools this machine has for it (check: missing ones are an error)."""
    from edge_lstm.mcu.firmware import toolchain_version
    from edge_lstm.mcu.run import ready

    target = mcu_device(device.name, device.url)
    if check:
        ready(target)
    return {
        **target.describe(),
        "device": device.name,
        "architecture": target.board.cpu,
        "flash_kb": target.board.flash // 1024,
        "ram_kb": target.board.ram // 1024,
        "arm_gcc": toolchain_version(),
    }


def _arch(model: Path) -> Any:
    if not model.exists():
        raise ConfigError(f"{model}: no such model file; export one with `edge-lstm export` (a C library: --mcu DIR)")
    if model.is_dir():
        from edge_lstm.mcu.firmware import library_arch

        return library_arch(model)
    from edge_lstm.runtime.model_info import file_arch

    arch = file_arch(model)
    if arch is None:
        raise ConfigError(f"{model}: no architecture in its metadata; export it again with `edge-lstm export`")
    return arch


def test_cases(
    model: Path, arch: Any, limit: int | None, data: Path | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(x, lengths or None, labels): MNIST's test images (pixel / 255) or the model's test sequences."""
    from edge_lstm.data import mnist, sequences

    if arch.image:
        test = mnist.load_split(mnist.locate(None), "test")
        n = limit or len(test.labels)
        return test.images[:n].astype(np.float32) / 255, None, test.labels[:n]
    seqs = sequences.for_model(data, arch, model, limit)
    lengths = None if arch.steps is not None else seqs.lengths
    return seqs.x.astype(np.float32), lengths, seqs.labels


def eval_on_mcu(
    device: Named, model: Path, limit: int | None, data: Path | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    from edge_lstm.mcu.run import evaluate

    target = mcu_device(device.name, device.url)
    x, lengths, labels = test_cases(model, _arch(model), limit, data)
    rows = evaluate(target, model, x, lengths, labels, progress)
    return {"device": device.name, "device_info": target.describe(), "model": str(model), "variants": rows}


def bench_on_mcu(target: Any, model: Path, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """bench --on for one model on `target` (an McuDevice)."""
    from edge_lstm.mcu.run import bench

    arch = _arch(model)
    if arch.image:
        x, lengths, _ = test_cases(model, arch, BENCH_CASES, None)
    else:  # costs do not depend on the values: random sequences of the trained length (100 rows if any)
        x = np.random.default_rng(0).standard_normal((BENCH_CASES, arch.steps or 100, arch.features)).astype(np.float32)
        lengths = None
    return bench(target, model, x, lengths, progress)
