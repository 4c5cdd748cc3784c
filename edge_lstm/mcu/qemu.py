"""edge-lstm's firmware on one of QEMU's Cortex-M boards, its UART on a Unix socket.

`-icount shift=0` makes QEMU's clock follow instructions (1 ns each), so SysTick, clocked at the MPS2's
25 MHz, ticks once every 40 instructions: a deterministic instruction count. QEMU models no pipeline
or memory timing, so these are instructions, never cycles. Semihosting is on for the bulk channel
(link.py: classify_file); the firmware's answers still come over the UART.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from edge_lstm.errors import ConfigError
from edge_lstm.mcu.boards import Board
from edge_lstm.mcu.link import ByteStream, Firmware, McuError

INSTRUCTIONS_PER_TICK = 40  # -icount shift=0 (1 ns an instruction) over the MPS2's 25 MHz SysTick
START_TIMEOUT_S = 20


def qemu_binary() -> str:
    found = shutil.which("qemu-system-arm")
    if found is None:
        raise ConfigError("qemu-system-arm not found: install it (apt-get install qemu-system-arm)")
    return found


def qemu_version() -> str | None:
    """ "7.2.22"; None where QEMU is not installed."""
    found = shutil.which("qemu-system-arm")
    if found is None:
        return None
    out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    return out.split()[3] if out.startswith("QEMU emulator version") else "unknown"


class QemuBoard:
    """`with QemuBoard(elf, board) as fw:` a Firmware on a running QEMU; QEMU stopped after."""

    def __init__(self, elf: Path, board: Board, timeout: float = 60.0) -> None:
        if board.qemu is None:
            raise ConfigError(f"{board.name} has no QEMU board; use m3, m4 or m7, or a real board over serial://")
        self.elf, self.board, self.timeout = elf, board, timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-lstm-qemu-")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Firmware:
        path = Path(self._tmp.name) / "uart0.sock"
        cmd = [
            qemu_binary(),
            "-M",
            str(self.board.qemu),
            "-display",
            "none",
            "-monitor",
            "none",
            "-icount",
            "shift=0",
            "-semihosting-config",
            "enable=on,target=native",
            "-chardev",
            f"socket,id=uart0,path={path},server=on,wait=on",
            "-serial",
            "chardev:uart0",
            "-kernel",
            str(self.elf),
        ]
        log = Path(self._tmp.name) / "qemu.log"  # a file, not a pipe: a full pipe would stall QEMU
        with log.open("wb") as sink:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=sink)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._proc.poll() is not None:
                err = log.read_text(errors="replace").strip()
                self._stop()
                raise McuError(
                    f"QEMU ({self.board.qemu}) exited at start: {err.splitlines()[-1] if err else 'no message'}"
                )
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    self._stop()
                    raise McuError(f"QEMU ({self.board.qemu}) did not open its UART in {START_TIMEOUT_S} s") from None
                time.sleep(0.02)
        try:
            return Firmware(ByteStream(sock=sock, what=f"QEMU {self.board.qemu}"), self.timeout, bulk=True)
        except BaseException:
            sock.close()
            self._stop()
            raise

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._tmp.cleanup()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop()
