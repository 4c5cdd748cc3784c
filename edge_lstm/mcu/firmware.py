"""A library folder (export --mcu) built into edge-lstm's firmware for a board with Debian's
arm-none-eabi-gcc, and what it takes: the library's flash and RAM apart from the harness's.

The harness (c/startup.c, c/main.c, c/link.ld) is bare metal: a vector table, the UART protocol,
SysTick. Sizes come from the linked ELF's symbols: the library's are named el_* and edge_lstm_*, the
harness's fw_*, so flash and RAM are counted after the linker dropped what nothing uses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edge_lstm.arch import Arch
from edge_lstm.errors import ConfigError
from edge_lstm.mcu.boards import Board

TOOLCHAIN_HINT = "install it: apt-get install gcc-arm-none-eabi (Debian/Ubuntu), or Arm GNU Toolchain's release"
HARNESS = ("startup.c", "main.c", "fw.h", "link.ld")


@dataclass(frozen=True)
class Footprint:
    """Bytes. flash: text and rodata; ram: data and bss (the stack is measured when it runs)."""

    library_flash: int  # the model's code and weights
    library_ram: int  # the model's state and scratch
    firmware_flash: int  # the whole image: library, harness, libgcc
    firmware_ram: int  # the whole image's static RAM (the harness's input buffer included)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} not found: building firmware needs Arm's GNU toolchain; {TOOLCHAIN_HINT}")
    return found


MANIFEST_KEYS = ("variant", "int8", "arch", "flash_data_bytes", "ram_bytes")  # codegen.write_library's


def manifest(library: Path) -> dict[str, Any]:
    """A library folder's model.json, with every entry the build and the checks read (else ConfigError)."""
    path = Path(library) / "model.json"
    redo = "write the library again with export --mcu"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{library}: not a C library of edge-lstm (no model.json); write one with export --mcu"
        ) from None
    except ValueError:
        raise ConfigError(f"{path}: not valid JSON; {redo}") from None
    missing = [k for k in MANIFEST_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise ConfigError(f"{path}: no {', '.join(missing)}; {redo}")
    return dict(data)


def library_arch(library: Path) -> Arch:
    return Arch.from_dict(manifest(library)["arch"])  # ConfigError if it is not one


def toolchain_version() -> str | None:
    """arm-none-eabi-gcc's version, or None where it is not installed."""
    gcc = shutil.which("arm-none-eabi-gcc")
    return subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True).stdout.strip() if gcc else None


def build(library: Path, board: Board, out: Path, max_rows: int) -> tuple[Path, Footprint]:
    """fw.elf in `out` from the library folder; its footprint."""
    gcc = tool("arm-none-eabi-gcc")
    out.mkdir(parents=True, exist_ok=True)
    for name in HARNESS:
        (out / name).write_text(resources.files("edge_lstm.mcu").joinpath(f"c/{name}").read_text())
    int8 = bool(manifest(library).get("int8"))
    elf = out / "fw.elf"
    cmd = [
        gcc,
        *board.cflags,
        "-O2",
        "-std=c99",
        "-Wall",
        # int8: keep float rounding as on the host (the host build is the int8 reference, bit for bit);
        # fp32: fused multiply-adds (VFMA), a third fewer instructions, within 1e-5 of the host
        "-ffp-contract=off" if int8 else "-ffp-contract=fast",
        "-fno-tree-loop-distribute-patterns",  # else GCC turns startup's memset loop into a call to itself
        "-ffunction-sections",
        "-fdata-sections",
        "-nostdlib",
        "-nostartfiles",
        "-Wl,--gc-sections",
        f"-DEL_MAX_ROWS={max_rows}",
        f"-I{library}",
        "-T",
        str(out / "link.ld"),
        "-o",
        str(elf),
        str(out / "startup.c"),
        str(out / "main.c"),
        str(Path(library) / "edge_lstm.c"),
        str(Path(library) / "edge_lstm_model.c"),
        "-lgcc",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "error" in line] or [done.stderr.strip()]
        raise ConfigError(f"the firmware did not build for {board.name}: {errors[0][:200]}")
    return elf, footprint(elf)


def footprint(elf: Path) -> Footprint:
    nm = subprocess.run(
        [tool("arm-none-eabi-nm"), "-S", "--defined-only", str(elf)], capture_output=True, text=True, check=True
    )
    lib_flash = lib_ram = 0
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) != 4 or not parts[3].startswith(("el_", "edge_lstm_")):
            continue
        size, kind = int(parts[1], 16), parts[2].lower()
        if kind in "tr":
            lib_flash += size
        elif kind in "bd":
            lib_ram += size
    sizes = subprocess.run([tool("arm-none-eabi-size"), str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in sizes.stdout.splitlines()[1].split()[:3])
    return Footprint(lib_flash, lib_ram, text + data, data + bss)


CODE_ALLOWANCE = 4096  # the runtime's code without a compiler to measure it (measured: 1.2-1.5 KB on M4)
STACK_ALLOWANCE = 512  # the library's stack (measured peak of the whole firmware: 100-350 B)


def library_size(library: Path, board: Board) -> tuple[int, int, bool]:
    """(flash, RAM, measured) the library needs on `board`: its objects compiled for the board when
    arm-none-eabi-gcc is here (text + data, data + bss), else its const data and an allowance for code.
    RAM includes a stack allowance."""
    gcc = shutil.which("arm-none-eabi-gcc")
    about = manifest(library)
    if gcc is None:
        return about["flash_data_bytes"] + CODE_ALLOWANCE, about["ram_bytes"] + STACK_ALLOWANCE, False
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edge-lstm-size-") as tmp:
        objects = []
        for name in ("edge_lstm.c", "edge_lstm_model.c"):
            obj = Path(tmp) / f"{name}.o"
            cmd = [gcc, *board.cflags, "-O2", "-std=c99", "-c", "-o", str(obj), str(Path(library) / name)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise ConfigError(f"the library did not compile for {board.name}: {done.stderr.strip()[:200]}")
            objects.append(str(obj))
        out = subprocess.run([tool("arm-none-eabi-size"), *objects], capture_output=True, text=True, check=True)
    flash = ram = 0
    for line in out.stdout.splitlines()[1:]:
        text, data, bss = (int(v) for v in line.split()[:3])
        flash, ram = flash + text + data, ram + data + bss
    return flash, ram + STACK_ALLOWANCE, True
