"""The generated C library built for this machine and called through ctypes: how export verifies the
C it writes (the same source the firmware compiles), and the reference the firmware is compared with.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edge_lstm.errors import ConfigError


def host_compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise ConfigError(
        "export --mcu checks the C it writes by compiling it here, and no C compiler was found; "
        "install one (Debian: apt-get install gcc) or set CC"
    )


class HostLibrary:
    """The C library of `folder`, compiled into a shared object in a temporary folder."""

    def __init__(self, folder: Path, features: int, classes: int) -> None:
        self.features, self.classes = features, classes
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-lstm-mcu-")
        lib = Path(self._tmp.name) / "libedge_lstm.so"
        sources = [str(folder / "edge_lstm.c"), str(folder / "edge_lstm_model.c")]
        cmd = [host_compiler(), "-O2", "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(lib), *sources]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "error" in line] or [done.stderr.strip()]
            raise ConfigError(f"the generated C did not compile here: {errors[0][:200]}")
        self._lib = ctypes.CDLL(str(lib))
        floats = ctypes.POINTER(ctypes.c_float)
        self._lib.edge_lstm_classify.argtypes = [floats, ctypes.c_int, floats]
        self._lib.edge_lstm_step.argtypes = [floats, floats]
        self._lib.edge_lstm_reset.argtypes = []

    def close(self) -> None:
        self._tmp.cleanup()

    def classify(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """(N, steps, features) -> logits (N, classes); lengths: the real rows of each sequence."""
        out = np.zeros((len(x), self.classes), np.float32)
        floats = ctypes.POINTER(ctypes.c_float)
        for i, seq in enumerate(x):
            n = int(lengths[i]) if lengths is not None else len(seq)
            rows = np.ascontiguousarray(seq[:n], np.float32)
            self._lib.edge_lstm_classify(rows.ctypes.data_as(floats), n, out[i].ctypes.data_as(floats))
        return out

    def steps(self, seq: np.ndarray) -> np.ndarray:
        """One sequence row by row through the step API: the logits after each row (steps, classes)."""
        out = np.zeros((len(seq), self.classes), np.float32)
        floats = ctypes.POINTER(ctypes.c_float)
        self._lib.edge_lstm_reset()
        for t, row in enumerate(np.ascontiguousarray(seq, np.float32)):
            self._lib.edge_lstm_step(row.ctypes.data_as(floats), out[t].ctypes.data_as(floats))
        return out
