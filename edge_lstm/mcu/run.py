"""`eval --on` and `bench --on` for a microcontroller: the model's C library built into firmware,
run on QEMU's board or a real one over serial, and compared with this machine.

For each variant: fp32 is compared with onnxruntime on the ONNX file, int8 with the same C library
built for this machine (the int8 reference: the firmware must give its classes; with QEMU, its logits
bit for bit). Costs are instructions (QEMU, -icount) or cycles (a board's SysTick), flash and RAM of
the library apart from the harness, and the stack the firmware used.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.arch import Arch
from edge_lstm.errors import ConfigError
from edge_lstm.mcu import codegen, firmware, weights
from edge_lstm.mcu.boards import Board
from edge_lstm.mcu.host import HostLibrary
from edge_lstm.mcu.link import Firmware, McuError
from edge_lstm.mcu.qemu import INSTRUCTIONS_PER_TICK, QemuBoard, qemu_version


@dataclass(frozen=True)
class McuDevice:
    name: str
    board: Board
    port: str | None = None  # a serial port; None: QEMU's board
    baud: int = 115200
    pyocd: str | None = None  # pyOCD's target name: flash the firmware with `pyocd flash` before running
    timeout: float = 60.0  # seconds a board may take to answer one request

    @property
    def emulated(self) -> bool:
        return self.port is None

    @property
    def unit(self) -> str:
        return "instructions" if self.emulated else "cycles"

    def per_tick(self) -> int:
        return INSTRUCTIONS_PER_TICK if self.emulated else 1

    def describe(self) -> dict[str, Any]:
        b = self.board
        qemu = qemu_version() if self.emulated else None
        return {
            "board": b.name,
            "cpu": b.cpu,
            "about": b.about,
            "emulated": self.emulated,
            "qemu": qemu,
            "port": self.port,
        }


@dataclass
class Variant:
    name: str  # fp32 or int8
    library: Path
    arch: Arch
    reference: Callable[[np.ndarray, np.ndarray | None], np.ndarray]  # (x, lengths) -> logits here
    reference_name: str


@contextlib.contextmanager
def variants(model: Path, work: Path) -> Iterator[list[Variant]]:
    """An ONNX file -> its fp32 and int8 libraries in `work`; a library folder (export --mcu) -> itself."""
    hosts: list[HostLibrary] = []
    try:
        if Path(model).is_dir():
            arch = firmware.library_arch(model)
            host = HostLibrary(Path(model), arch.features, arch.n_classes)
            hosts.append(host)
            variant = firmware.manifest(model)["variant"]
            yield [Variant(variant, Path(model), arch, host.classify, "the same C built for this machine")]
            return
        loaded = weights.load(Path(model))
        out = []
        for name in codegen.VARIANTS:
            folder = work / name
            codegen.write_library(loaded, folder, name)
            if name == "int8":
                host = HostLibrary(folder, loaded.arch.features, loaded.arch.n_classes)
                hosts.append(host)
                out.append(Variant(name, folder, loaded.arch, host.classify, "the int8 C built for this machine"))
            else:
                out.append(Variant(name, folder, loaded.arch, _ort(Path(model)), "onnxruntime"))
        yield out
    finally:
        for h in hosts:
            h.close()


def _ort(model: Path) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    from edge_lstm.runtime import Classifier

    clf = Classifier(model)

    def run(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        return np.asarray(clf.logits(x, lengths=lengths))

    return run


def firmware_folder(device: McuDevice, library: Path) -> Path:
    """Where a board's firmware is kept for the user to flash: ~/.cache/edge-lstm/firmware/DEVICE/VARIANT."""
    import os
    import re

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-lstm" / "firmware"
    return base / re.sub(r"[^A-Za-z0-9_.-]+", "_", device.name) / library.name


@contextlib.contextmanager
def running(
    device: McuDevice, library: Path, work: Path, max_rows: int
) -> Iterator[tuple[Firmware, firmware.Footprint]]:
    """The firmware of `library` running on the device (QEMU started and stopped here). A board's is
    built where it stays (firmware_folder), for the user to flash when the board runs another."""
    out = work / f"fw-{library.name}" if device.emulated else firmware_folder(device, library)
    elf, footprint = firmware.build(library, device.board, out, max_rows)
    if device.emulated:
        with QemuBoard(elf, device.board, device.timeout) as fw:
            yield fw, footprint
        return
    from edge_lstm.mcu.serial import open_serial

    if device.pyocd:
        _flash(elf, device.pyocd)
    flash_it = f"flash {elf} first (pyocd flash -t TARGET {elf}, or add &pyocd=TARGET to the device's URL)"
    stream = open_serial(str(device.port), device.baud)
    try:
        try:
            fw = Firmware(stream, device.timeout)
        except McuError as e:  # no firmware of ours there yet, or none at all
            raise McuError(f"{e}; if it has no edge-lstm firmware yet, {flash_it}") from None
        about = firmware.manifest(library)
        if (fw.info.features, fw.info.int8, fw.info.flash_data) != (
            about["arch"]["features"],
            about["int8"],
            about["flash_data_bytes"],
        ):
            raise McuError(f"the board on {device.port} runs another model; {flash_it}")
        if fw.info.max_rows < max_rows:
            raise McuError(f"the board's firmware holds {fw.info.max_rows} rows, {max_rows} needed; {flash_it}")
        yield fw, footprint
    finally:
        stream.close()


def _flash(elf: Path, target: str) -> None:
    import shutil

    if shutil.which("pyocd") is None:
        raise ConfigError("pyocd not found: pip install pyocd (or flash the firmware with the board's own tool)")
    done = subprocess.run(["pyocd", "flash", "-t", target, str(elf)], capture_output=True, text=True)
    if done.returncode != 0:
        raise McuError(f"pyocd could not flash {target}: {(done.stderr.strip().splitlines() or ['no message'])[-1]}")


def ready(device: McuDevice) -> None:
    """What building and running firmware needs, checked before any work: one line if it is missing."""
    firmware.tool("arm-none-eabi-gcc")
    if device.emulated:
        from edge_lstm.mcu.qemu import qemu_binary

        qemu_binary()


def _each_firmware(
    device: McuDevice, model: Path, x: np.ndarray, lengths: np.ndarray | None, progress: Callable[[str], None]
) -> Iterator[tuple[Variant, Firmware, firmware.Footprint]]:
    """Each variant's firmware, built and running on the device, in turn (QEMU stopped after each)."""
    ready(device)
    max_rows = int(lengths.max()) if lengths is not None else x.shape[1]
    with tempfile.TemporaryDirectory(prefix="edge-lstm-mcu-") as tmp, variants(model, Path(tmp)) as found:
        for v in found:
            progress(f"{device.name}: {v.name} firmware, {len(x)} cases")
            with running(device, v.library, Path(tmp), max_rows) as (fw, footprint):
                yield v, fw, footprint


def evaluate(
    device: McuDevice,
    model: Path,
    x: np.ndarray,
    lengths: np.ndarray | None,
    labels: np.ndarray,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """The test cases through each variant's firmware; per variant its accuracy there and here."""
    rows = []
    for v, fw, footprint in _each_firmware(device, model, x, lengths, progress):

        def told(done: int, name: str = v.name) -> None:
            progress(f"{device.name}: {name} {done:,} of {len(x):,}")

        there, ticks = fw.classify_many(x, lengths, told)
        stack = fw.refresh().stack_peak
        here = v.reference(x, lengths)
        rows.append(
            {
                "device": device.name,
                "model": str(model),
                "variant": v.name,
                "n": len(x),
                "accuracy_there": float((there.argmax(1) == labels).mean()),
                "accuracy_here": float((here.argmax(1) == labels).mean()),
                "reference": v.reference_name,
                "same_class": int((there.argmax(1) == here.argmax(1)).sum()),
                "max_abs_diff": float(np.abs(there - here).max()) if len(x) else 0.0,
                "differ": [int(i) for i in np.flatnonzero(there.argmax(1) != here.argmax(1))][:20],
                f"{device.unit}_per_inference": float(np.median(ticks)) * device.per_tick(),
                "footprint": footprint.to_dict(),
                "stack_peak": stack,
            }
        )
    return rows


def bench(
    device: McuDevice,
    model: Path,
    x: np.ndarray,
    lengths: np.ndarray | None,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Cost per variant: per inference (median over the cases in x) and per streaming step (median
    over the rows of x[0]), flash, RAM and stack."""
    rows = []
    per = device.per_tick()
    for v, fw, footprint in _each_firmware(device, model, x, lengths, progress):
        _, ticks = fw.classify_many(x, lengths)
        fw.reset()
        n0 = int(lengths[0]) if lengths is not None else x.shape[1]
        steps = [fw.step(row)[1] for row in x[0][:n0]]
        info = fw.refresh()
        rows.append(
            {
                "device": device.name,
                "model": str(model),
                "variant": v.name,
                "unit": device.unit,
                "n": len(x),
                "per_inference": float(np.median(ticks)) * per,
                "per_inference_max": float(np.max(ticks)) * per,
                "per_step": float(np.median(steps)) * per,
                "flash": footprint.library_flash,
                "ram": footprint.library_ram + info.stack_peak,
                "footprint": footprint.to_dict(),
                "stack_peak": info.stack_peak,
                "emulated": device.emulated,
            }
        )
    return rows
