"""Microcontrollers edge-lstm builds for: the CPU (compiler flags), QEMU's board for it, and flash and
RAM limits (the budget `export --mcu --board` checks before anything is written).

QEMU's MPS2 boards are Arm's FPGA images of each core with 4 MB of code and data memory; their limits
here are those of a common part with the same core, so a budget check on `m4` means "fits a 512 KB
STM32F4", not "fits 4 MB of FPGA RAM".
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_lstm.errors import ConfigError

KB = 1024


@dataclass(frozen=True)
class Board:
    name: str
    cpu: str  # -mcpu
    fpu: str | None  # -mfpu (hard float); None: soft float (no FPU)
    flash: int  # bytes
    ram: int  # bytes
    qemu: str | None  # QEMU's machine that emulates this core, if any
    about: str

    @property
    def cflags(self) -> list[str]:
        flags = [f"-mcpu={self.cpu}", "-mthumb"]
        return flags + ([f"-mfpu={self.fpu}", "-mfloat-abi=hard"] if self.fpu else ["-mfloat-abi=soft"])


BOARDS = {
    b.name: b
    for b in (
        Board(
            "m4",
            "cortex-m4",
            "fpv4-sp-d16",
            512 * KB,
            128 * KB,
            "mps2-an386",
            "Cortex-M4F (QEMU mps2-an386; limits of an STM32F411)",
        ),
        Board(
            "m7",
            "cortex-m7",
            "fpv5-sp-d16",
            1024 * KB,
            320 * KB,
            "mps2-an500",
            "Cortex-M7 (QEMU mps2-an500; limits of an STM32F746)",
        ),
        Board(
            "m3",
            "cortex-m3",
            None,
            256 * KB,
            64 * KB,
            "mps2-an385",
            "Cortex-M3, no FPU (QEMU mps2-an385; limits of an STM32F103RC)",
        ),
        Board(
            "nucleo-f401re",
            "cortex-m4",
            "fpv4-sp-d16",
            512 * KB,
            96 * KB,
            None,
            "ST NUCLEO-F401RE (STM32F401RE, Cortex-M4F 84 MHz)",
        ),
        Board(
            "nucleo-l432kc",
            "cortex-m4",
            "fpv4-sp-d16",
            256 * KB,
            64 * KB,
            None,
            "ST NUCLEO-L432KC (STM32L432KC, Cortex-M4F 80 MHz)",
        ),
        Board(
            "nrf52840",
            "cortex-m4",
            "fpv4-sp-d16",
            1024 * KB,
            256 * KB,
            None,
            "Nordic nRF52840 (Cortex-M4F 64 MHz; Arduino Nano 33 BLE)",
        ),
        Board(
            "nucleo-f746zg",
            "cortex-m7",
            "fpv5-sp-d16",
            1024 * KB,
            320 * KB,
            None,
            "ST NUCLEO-F746ZG (STM32F746ZG, Cortex-M7 216 MHz)",
        ),
        Board(
            "nucleo-h743zi",
            "cortex-m7",
            "fpv5-d16",
            2048 * KB,
            1024 * KB,
            None,
            "ST NUCLEO-H743ZI (STM32H743ZI, Cortex-M7 480 MHz)",
        ),
    )
}
QEMU_MACHINES = {b.qemu: b for b in BOARDS.values() if b.qemu}


def board(name: str) -> Board:
    """A board by its name or its QEMU machine's."""
    found = BOARDS.get(name) or QEMU_MACHINES.get(name)
    if found is None:
        raise ConfigError(f"unknown board {name!r}; one of: {', '.join([*BOARDS, *QEMU_MACHINES])}")
    return found


def check_fits(b: Board, flash: int, ram: int, what: str) -> None:
    """ConfigError in one line when `what` needs more flash or RAM than the board has."""
    over = [
        f"{label} {need / KB:,.1f} KB of {have / KB:,.0f} KB"
        for label, need, have in (("flash", flash, b.flash), ("RAM", ram, b.ram))
        if need > have
    ]
    if over:
        raise ConfigError(
            f"{what} does not fit the board {b.name}: it needs {' and '.join(over)}; "
            "try the int8 variant, fewer hidden units (train --hidden) or a larger board"
        )
