"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

weights_only=True means a checkpoint is data (tensors, numbers, strings, dicts), never code: a
checkpoint downloaded from somewhere cannot run anything when it is loaded.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from edge_lstm import __version__
from edge_lstm.contract import DEFAULT_CHECKPOINT
from edge_lstm.errors import CheckpointError
from edge_lstm.fileio import atomic_path, not_a_file
from edge_lstm.training.model import LSTMClassifier, ModelConfig

FORMAT = "edge-lstm-checkpoint"
FORMAT_VERSION = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "edge_lstm_version": __version__, **payload}
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def load(path: Path) -> dict[str, Any]:
    """Read and validate a checkpoint's envelope (not yet its weights)."""
    path = Path(path)
    if (why := not_a_file(path)) is not None:
        hint = " (train one with `edge-lstm train`)" if path == DEFAULT_CHECKPOINT else ""
        raise CheckpointError(f"checkpoint {path} {why}{hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupted, truncated or unsafe: {first[:160]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an edge-lstm checkpoint (foreign file)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} is not supported by this version"
        )
    return payload


def build_model(payload: dict[str, Any], source: Path) -> LSTMClassifier:
    """The model a checkpoint describes, with its weights, in eval mode."""
    try:
        config = ModelConfig.from_dict(payload["model_config"])
        model = LSTMClassifier(config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit the LSTM classifier ({first[:160]})") from None
    return model.eval()


def load_model(path: Path) -> tuple[LSTMClassifier, dict[str, Any]]:
    payload = load(path)
    return build_model(payload, Path(path)), payload
