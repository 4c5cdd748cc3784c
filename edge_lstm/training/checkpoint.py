"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

weights_only=True means a checkpoint is data (tensors, numbers, strings, dicts), never code: a
checkpoint downloaded from somewhere cannot run anything when it is loaded.

A checkpoint records the model's architecture (`arch`, edge_lstm/arch.py). Those of earlier versions
recorded a `model_config` of a one-layer LSTM (and `classes` when trained on own data, none for
MNIST) and named the layer `lstm`: they are read as that architecture, and export the same files.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from edge_lstm import __version__
from edge_lstm.arch import MNIST, Arch
from edge_lstm.contract import DEFAULT_CHECKPOINT
from edge_lstm.errors import CheckpointError, ConfigError
from edge_lstm.fileio import atomic_path, not_a_file
from edge_lstm.training.model import RecurrentClassifier

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
    if (what := _not_torch(path)) is not None:
        raise CheckpointError(
            f"{path}: not a checkpoint at all: {what}; a checkpoint is the model.pt that `edge-lstm train` writes"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint: {_why_unreadable(e)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an edge-lstm checkpoint (foreign file)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} is not supported by this version"
        )
    return payload


def _not_torch(path: Path) -> str | None:
    """What the file is when its first bytes are not a PyTorch file's (a zip archive, or a legacy
    pickle): torch.load would misread a text file as a pickle holding 'objects other than tensors'."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return None
    if not head:
        return "the file is empty"
    if head[:1] == b"\x08" and any(w in head.lower() for w in (b"edge-lstm", b"pytorch", b"onnx")):
        return "it looks like an ONNX model (use it with eval, predict or bench as it is)"
    if all(b >= 32 or b in b"\t\n\r" for b in head):
        return f"it is a text file ({path.stat().st_size} bytes)"
    return "its first bytes are neither a PyTorch zip archive nor a pickle"


def _why_unreadable(e: Exception) -> str:
    """One whole sentence for what torch.load's error means (its own messages run to paragraphs)."""
    text = str(e)
    if isinstance(e, pickle.UnpicklingError) or "Weights only load failed" in text:
        return (
            "it holds objects other than tensors and plain data, which loading with weights_only refuses "
            "(such a file could run code)."
        )
    if isinstance(e, zipfile.BadZipFile) or "zip archive" in text or "central directory" in text:
        return "the file is truncated or corrupted (its zip archive is incomplete)."
    if "legacy .tar format" in text:
        return "it is not a zip-format PyTorch checkpoint."
    return f"the file is corrupted or not a PyTorch checkpoint ({type(e).__name__})."


def arch(payload: dict[str, Any], source: Path | None = None) -> Arch:
    """The architecture a checkpoint describes (that of an earlier version's checkpoint included)."""
    try:
        if "arch" in payload:
            return Arch.from_dict(payload["arch"])
        cfg = payload["model_config"]  # an earlier version's one-layer LSTM
        classes = payload.get("classes")
        return Arch.from_dict(
            {
                "steps": int(cfg["n_steps"]) or None,
                "features": cfg["n_inputs"],
                "classes": classes if classes is not None else MNIST.classes,
                "hidden": cfg["n_hidden"],
                "in_units": cfg["n_in_units"],
                "image": classes is None,
            }
        )
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        what = f"{source}: " if source is not None else ""
        raise CheckpointError(f"{what}no readable model architecture in the checkpoint ({e}): a damaged file") from None


def build_model(payload: dict[str, Any], source: Path) -> RecurrentClassifier:
    """The model a checkpoint describes, with its weights, in eval mode."""
    model_arch = arch(payload, source)
    try:
        model = RecurrentClassifier(model_arch)
        # earlier versions named the recurrent layers `lstm`
        weights = {("rnn." + k[5:] if k.startswith("lstm.") else k): v for k, v in payload["state_dict"].items()}
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        what = "a missing entry" if isinstance(e, KeyError) else "tensors of other names or shapes"
        raise CheckpointError(
            f"{source}: its weights do not fit its {model_arch.describe()} classifier "
            f"({what}: another architecture, or a damaged file)."
        ) from None
    return model.eval()


def load_model(path: Path) -> tuple[RecurrentClassifier, dict[str, Any]]:
    payload = load(path)
    return build_model(payload, Path(path)), payload


def recorded_test_data(payload: dict[str, Any]) -> Path | None:
    """The test sequences a model of own data was trained with, if that file is still there."""
    recorded = payload.get("data", {}).get("test")
    return Path(recorded) if recorded and Path(recorded).is_file() else None
