"""Helpers shared by several test files (importable: pyproject puts tests/ on the path)."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
from PIL import Image


def ctrl_c_reaches_python() -> None:
    """Popen's preexec_fn for the Ctrl-C tests: SIGINT back to its default in the child. A pytest
    started with `&` from a script (or under nohup) runs with SIGINT ignored, the child inherits
    that, and Python then never turns SIGINT into KeyboardInterrupt: the tests would fail there
    although a terminal's Ctrl-C works (found running README's test command in the background)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def hand_drawn(digit: np.ndarray, size: int = 120, at: tuple[int, int] = (10, 45)) -> np.ndarray:
    """An MNIST digit as a person might photograph it: dark ink on white paper, big, off-centre."""
    big = np.asarray(Image.fromarray(digit).resize((70, 70), Image.Resampling.BICUBIC))
    paper = np.full((size, size), 235, np.uint8)  # slightly grey paper
    y, x = at
    paper[y : y + 70, x : x + 70] = np.minimum(paper[y : y + 70, x : x + 70], 255 - big)
    return paper


def cell_files(out: Path, cell: str, layers: int) -> dict[str, Path]:
    """A tiny MNIST model of another cell or depth (2,000 images, one pass): its classifier and step files."""
    from edge_lstm.export import ExportConfig, export
    from edge_lstm.training import TrainConfig, train

    config = TrainConfig(subset=2000, test_subset=200, epochs=1, hidden=24, cell=cell, layers=layers)
    run = train(config, out / "run")
    (fp32,) = export(ExportConfig(output=out / "model.onnx", checkpoint=run.checkpoint))
    (step,) = export(ExportConfig(output=out / "step.onnx", checkpoint=run.checkpoint, streaming=True))
    return {"fp32": Path(fp32.path), "step": Path(step.path)}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (a server's workers, Triton and its stubs, Ray's daemons), from /proc."""
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parents[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        above = todo.pop()
        children = [c for c, parent in parents.items() if parent == above]
        out += children
        todo += children
    return out


def running(pid: int) -> bool:
    """A live process (a zombie, exited but not yet reaped by whoever adopted it, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
