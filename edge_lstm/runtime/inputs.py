"""Input validation shared by the runners: what users pass in becomes float32 in [0, 1], or an InputError."""

from __future__ import annotations

import numpy as np

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import InputError


def to_input(images: np.ndarray, rank: int = 3, arch: Arch = contract.MNIST) -> np.ndarray:
    """Validate and convert images to float32 in [0, 1], shape (B, 28, 28) (rank 3) or rows (B, 28) (rank 2).

    Accepts uint8 0..255 or float32 0..1; a single image/row without the batch axis is promoted.
    A model of own sequences (arch not MNIST's) takes any finite numbers: to_sequences.
    """
    if not isinstance(images, np.ndarray):
        raise InputError(f"expected a numpy array, got {type(images).__name__}")
    if not arch.image:
        return to_sequences(images, rank, arch)
    assert arch.steps is not None  # pictures have their rows
    tail = (arch.steps, arch.features) if rank == 3 else (arch.features,)
    what = "images of shape (28, 28) or (B, 28, 28)" if rank == 3 else "rows of shape (28,) or (B, 28)"
    if images.ndim == rank - 1 and images.shape == tail:
        images = images[None]
    if images.ndim != rank or images.shape[1:] != tail:
        hint = "; reshape flat images with x.reshape(-1, 28, 28)" if rank == 3 and images.shape[-1:] == (784,) else ""
        raise InputError(f"expected {what}, got shape {images.shape}{hint}")
    if images.shape[0] == 0:
        raise InputError("empty batch: expected at least one image")
    if images.dtype == np.uint8:
        return images.astype(np.float32) * np.float32(1 / 255)
    if images.dtype != np.float32:
        raise InputError(
            f"expected uint8 (0..255) or float32 (0..1) pixels, got {images.dtype}; convert with .astype(np.float32)"
        )
    lo, hi = images.min(), images.max()
    if not (lo >= 0.0 and hi <= 1.0):  # NaN fails both comparisons
        bad = "NaN values" if np.isnan(images).any() else f"values in [{lo:g}, {hi:g}]"
        raise InputError(f"float32 pixels must lie in [0, 1] (pixel / 255), got {bad}")
    return np.ascontiguousarray(images)


def to_sequences(x: np.ndarray, rank: int, arch: Arch) -> np.ndarray:
    """Sequences (B, T, F) (rank 3) or steps (B, F) (rank 2) of finite numbers, as float32; one
    sequence (T, F) or step (F,) without the batch axis is promoted. T is the model's, or any."""
    f, t = arch.features, arch.steps
    tail = "(B, T, F)" if rank == 3 else "(B, F)"
    want = f"({t or 'T'}, {f}) or (B, {t or 'T'}, {f})" if rank == 3 else f"({f},) or (B, {f})"
    if x.ndim == rank - 1:
        x = x[None]
    ok = x.ndim == rank and x.shape[-1] == f and (rank == 2 or t is None or x.shape[1] == t)
    if not ok:
        raise InputError(f"expected sequences of shape {want}, got {x.shape} (the model's {tail} is from its data)")
    if x.shape[0] == 0 or (rank == 3 and x.shape[1] == 0):
        raise InputError("empty input: expected at least one sequence of at least one step")
    if x.dtype.kind not in "fiu":
        raise InputError(f"expected numbers, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError("the sequences have NaN or infinite values; fill or drop them")
    return x


def to_lengths(lengths: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """int32 lengths (B,) of padded sequences x (B, T, F), each 1..T (None: all T)."""
    if lengths is None:
        return np.full(len(x), x.shape[1], np.int32)
    lengths = np.asarray(lengths)
    if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
        raise InputError(f"lengths must be {len(x)} integers, one per sequence; got shape {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > x.shape[1]:
        raise InputError(f"lengths must lie between 1 and {x.shape[1]} (the padded length)")
    return lengths.astype(np.int32)


def as_float(x: np.ndarray) -> np.ndarray:
    """A model's float32 input: uint8 pictures as pixel / 255, anything else (sequences) as it is."""
    return x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
