"""Resuming a run: its recorded options, the ones given now checked against them, and the command
that continues it.

A run records every option that shapes its weights (precision and shard count as resolved on the
machine that started it). `--resume` takes them from the run, so `edge-lstm train --resume --out RUN`
is a complete command; an option given now that differs is refused, naming each difference.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from edge_lstm.errors import CheckpointError
from edge_lstm.training import checkpoint
from edge_lstm.training.recipes import FREE_ON_RESUME, TrainConfig

LAST, FINAL = "last.pt", "model.pt"


def differences(saved: TrainConfig, given: dict[str, Any]) -> list[str]:
    """'name: X in the run, Y given' for each given option (not free on resume) that differs."""
    out = []
    recorded = saved.to_dict()
    for key, value in given.items():
        if key in FREE_ON_RESUME or value is None or (key == "precision" and value == "auto"):
            continue  # (a run records its precision resolved; "auto" takes it)
        mine = value.to_dict() if hasattr(value, "to_dict") else value
        if recorded.get(key) != mine:
            out.append(f"{key.replace('_', '-')}: {recorded.get(key)!r} in the run, {mine!r} now")
    return out


def run_config(run_dir: Path, given: dict[str, Any]) -> TrainConfig:
    """The run's own options, with the given ones checked against them (free ones applied)."""
    last = Path(run_dir) / LAST
    if not last.is_file():
        raise CheckpointError(f"checkpoint {last} not found: nothing to resume (run without --resume)")
    saved = TrainConfig.from_dict(checkpoint.load(last).get("train_config", {}))
    refuse_differences(last, saved, given)
    return replace(saved, **{k: given[k] for k in FREE_ON_RESUME if given.get(k) is not None})


def refuse_differences(last: Path, saved: TrainConfig, given: dict[str, Any]) -> None:
    if diff := differences(saved, given):
        raise CheckpointError(
            f"{last} was written with other training options ({'; '.join(diff)}); "
            f"resume without them (the run's own options are used): {resume_command(last.parent)}"
        )


def resume_command(run_dir: Path, data_dir: Path | None = None, device: str = "cpu") -> str:
    """The whole command that continues exactly this run (its options come from the run itself)."""
    parts = ["edge-lstm", "train", "--resume", "--out", str(run_dir)]
    if data_dir is not None:
        parts += ["--data-dir", str(data_dir)]
    if device != ("cuda" if torch.cuda.is_available() else "cpu"):  # not what --device auto picks here
        parts += ["--device", device]
    return shlex.join(parts)
