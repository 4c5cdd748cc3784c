"""`export --mcu DIR`: the model's C library for microcontrollers, DIR/fp32 and DIR/int8, each checked
here before it is kept: built for this machine (edge_lstm.mcu.host) and compared with PyTorch on the
whole test set as every other target is, its step API row by row against its classify, and, with
`--board`, its flash and RAM against the board's.

The weights come from the base file just written and verified (the C generator reads ONNX files, so
`eval --on m4 model.onnx` makes the same library on a machine without torch).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import ExportError
from edge_lstm.fileio import replace_folder

Check = Callable[[Callable[[np.ndarray, np.ndarray], np.ndarray], str, str], Any]  # (engine, what, tolerance)
STEP_CASES = 8  # test sequences whose step-by-step logits must equal classify's


def write_verified(
    source: Path, folder: Path, variant: str, board: str | None, check: Check, probe: np.ndarray
) -> Path:
    """The library of `source` in `variant` at folder/variant, only if it passes (else the old one stays)."""
    from edge_lstm.mcu import boards, codegen, weights
    from edge_lstm.mcu.firmware import library_size
    from edge_lstm.mcu.host import HostLibrary

    model = weights.load(source)
    dest = folder / variant
    tmp = folder / f".{variant}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        about = codegen.write_library(model, tmp, variant)
        if board is not None:
            b = boards.board(board)
            flash, ram, measured = library_size(tmp, b)
            boards.check_fits(b, flash, ram, f"the {variant} C library ({model.arch.describe()})")
            about["board"] = {"name": b.name, "flash_bytes": flash, "ram_bytes": ram, "measured": measured}
        lib = HostLibrary(tmp, model.arch.features, model.arch.n_classes)
        try:
            verdict = check(lambda x, lengths: lib.classify(x, lengths), f"mcu-{variant}", f"mcu-{variant}")
            _check_steps(lib, probe, variant)
        finally:
            lib.close()
        keep_folder(tmp, dest, about, verdict)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _check_steps(lib: Any, probe: np.ndarray, variant: str) -> None:
    """The step API, row by row, ends where classify does (the same code: exactly)."""
    cases = probe[:STEP_CASES]
    by_steps = np.stack([lib.steps(seq)[-1] for seq in cases])
    if not np.array_equal(by_steps, lib.classify(cases)):
        raise ExportError(f"mcu-{variant}: the step API's logits differ from classify's on the same rows")


def keep_folder(tmp: Path, dest: Path, about: dict[str, Any], verdict: Any) -> None:
    """A checked folder into place: its model.json with how the check went, then tmp -> dest."""
    if verdict is not None:
        about["verified"] = {
            "agreement": verdict.agreement,
            "accuracy": verdict.accuracy,
            "max_abs_diff": verdict.max_abs_diff,
        }
    (tmp / "model.json").write_text(json.dumps(about, indent=1) + "\n")
    replace_folder(tmp, dest)
