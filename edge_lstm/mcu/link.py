"""The firmware's byte protocol (c/main.c) from the host's side, over any byte stream: QEMU's UART on
a Unix socket, a real board's USB serial port, QEMU's UART on a pty (how the serial path is tested).
Every read has a deadline: a board that stops answering is an McuError, never a hang.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_lstm.errors import EdgeLstmError

MAGIC = b"ELM1"


class McuError(EdgeLstmError):
    """The board (or the emulator) did not answer as the firmware does."""


@dataclass(frozen=True)
class FirmwareInfo:
    features: int
    classes: int
    steps: int  # 0: any length
    int8: bool
    flash_data: int
    ram: int
    max_rows: int
    stack_peak: int  # bytes of stack used since boot (painted stack)


def _tick(progress: Callable[[int], None] | None, done: int, total: int) -> None:
    """Progress at every tenth of a long run (a test set through QEMU takes minutes)."""
    if progress is not None and total >= 1000 and done % (total // 10) == 0 and done < total:
        progress(done)


class ByteStream:
    """A socket or a file descriptor (serial port), read with deadlines."""

    def __init__(self, sock: socket.socket | None = None, fd: int | None = None, what: str = "the board") -> None:
        self.sock, self.fd, self.what = sock, fd, what
        found = sock.fileno() if sock is not None else fd
        assert found is not None, "a socket or a file descriptor"
        self._fileno = found

    def fileno(self) -> int:
        return self._fileno

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self], [], 30)
            if not ready:
                raise McuError(f"{self.what} stopped taking input (30 s); is the firmware running?")
            n = self.sock.send(view) if self.sock is not None else os.write(self.fileno(), view)
            view = view[n:]

    def read(self, n: int, timeout: float) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self], [], [], max(0.0, left))
            if not ready:
                got = f" (it sent {bytes(out)[:16]!r})" if out else ""
                raise McuError(
                    f"{self.what} did not answer within {timeout:.0f} s{got}; check the port and the firmware"
                )
            chunk = self.sock.recv(n - len(out)) if self.sock is not None else os.read(self.fileno(), n - len(out))
            if not chunk:
                raise McuError(f"{self.what} closed the connection")
            out += chunk
            if out.startswith(b"FAULT"):
                raise McuError(f"{self.what}'s firmware faulted (HardFault): the model may not fit its stack or memory")
        return bytes(out)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        elif self.fd is not None:
            os.close(self.fd)


class Firmware:
    """edge-lstm's firmware on the other end of a byte stream."""

    def __init__(self, stream: ByteStream, timeout: float = 60.0, bulk: bool = False) -> None:
        self.stream, self.timeout = stream, timeout
        self.bulk = bulk  # the sequences may come from a host file (QEMU's semihosting)
        self.info = self._info()

    def _info(self) -> FirmwareInfo:
        self.stream.write(b"I")
        data = self.stream.read(4 + 32, self.timeout)
        if data[:4] != MAGIC:
            raise McuError(f"{self.stream.what} answered {data[:4]!r}, not edge-lstm's firmware (ELM1)")
        f, c, steps, int8, flash, ram, rows, stack = struct.unpack("<8I", data[4:])
        return FirmwareInfo(f, c, steps, bool(int8), flash, ram, rows, stack)

    def refresh(self) -> FirmwareInfo:
        self.info = self._info()
        return self.info

    def _logits(self) -> tuple[np.ndarray, int]:
        n = self.info.classes * 4 + 4
        head = self.stream.read(1, self.timeout)
        if head != b"L":
            raise McuError(f"{self.stream.what} refused the request ({head!r}): too many rows for its buffer?")
        data = self.stream.read(n, self.timeout)
        return np.frombuffer(data[:-4], "<f4").copy(), struct.unpack("<I", data[-4:])[0]

    def classify(self, rows: np.ndarray) -> tuple[np.ndarray, int]:
        """(n, features) -> logits (classes,), SysTick ticks of edge_lstm_classify."""
        rows = np.ascontiguousarray(rows, "<f4")
        if rows.ndim != 2 or rows.shape[1] != self.info.features:
            raise McuError(f"a sequence of {self.info.features} features a row, got {rows.shape}")
        if len(rows) > self.info.max_rows:
            raise McuError(f"{len(rows)} rows: the firmware holds {self.info.max_rows}; build it with more rows")
        self.stream.write(b"C" + struct.pack("<I", len(rows)) + rows.tobytes())
        return self._logits()

    def classify_many(
        self, x: np.ndarray, lengths: np.ndarray | None = None, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, steps, features) -> logits (N, classes) and ticks (N,); lengths: the real rows of each."""
        n_rows = [int(lengths[i]) if lengths is not None else x.shape[1] for i in range(len(x))]
        if not self.bulk:
            answers = []
            for seq, n in zip(x, n_rows, strict=True):
                answers.append(self.classify(seq[:n]))
                _tick(progress, len(answers), len(x))
        else:
            answers = self._from_file(x, n_rows, progress)
        logits = np.stack([a[0] for a in answers]) if answers else np.zeros((0, self.info.classes), np.float32)
        return logits, np.array([a[1] for a in answers], np.int64)

    def _from_file(
        self, x: np.ndarray, n_rows: list[int], progress: Callable[[int], None] | None
    ) -> list[tuple[np.ndarray, int]]:
        import tempfile

        too_long = max(n_rows, default=0)
        if too_long > self.info.max_rows:
            raise McuError(f"{too_long} rows: the firmware holds {self.info.max_rows}; build it with more rows")
        with tempfile.NamedTemporaryFile(prefix="edge-lstm-seqs-", suffix=".bin") as f:
            for seq, n in zip(x, n_rows, strict=True):
                f.write(struct.pack("<I", n) + np.ascontiguousarray(seq[:n], "<f4").tobytes())
            f.flush()
            path = f.name.encode()
            self.stream.write(b"B" + struct.pack("<II", len(x), len(path)) + path)
            if self.stream.read(1, self.timeout) != b"K":
                raise McuError(f"{self.stream.what} could not open the sequences' file through semihosting")
            answers = []
            for _ in range(len(x)):
                answers.append(self._logits())
                _tick(progress, len(answers), len(x))
            return answers

    def reset(self) -> None:
        self.stream.write(b"R")
        if self.stream.read(1, self.timeout) != b"K":
            raise McuError(f"{self.stream.what} did not acknowledge the reset")

    def step(self, row: np.ndarray) -> tuple[np.ndarray, int]:
        self.stream.write(b"S" + np.ascontiguousarray(row, "<f4").tobytes())
        return self._logits()
