"""Input validation shared by the runners: what users pass in becomes float32 in [0, 1], or an InputError."""

from __future__ import annotations

import numpy as np

from edge_lstm import contract
from edge_lstm.errors import InputError


def to_input(images: np.ndarray, rank: int = 3) -> np.ndarray:
    """Validate and convert images to float32 in [0, 1], shape (B, 28, 28) (rank 3) or rows (B, 28) (rank 2).

    Accepts uint8 0..255 or float32 0..1; a single image/row without the batch axis is promoted.
    """
    if not isinstance(images, np.ndarray):
        raise InputError(f"expected a numpy array, got {type(images).__name__}")
    tail = (contract.N_STEPS, contract.N_INPUTS) if rank == 3 else (contract.N_INPUTS,)
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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
