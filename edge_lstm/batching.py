"""Running any number of samples through something that takes a fixed batch size (a file exported
with `--batch N`, the phone-NPU graph, a .tflite file): chunks of N, the last one zero-padded, the
padding's outputs dropped. One helper for the runner, export's verification and the bench scripts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def in_fixed_batches(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, n: int) -> np.ndarray:
    """run(chunk of exactly n samples) -> outputs; applied over all of x, in order."""
    padded = np.concatenate([x, np.zeros((-len(x) % n, *x.shape[1:]), x.dtype)])
    return np.concatenate([run(padded[i : i + n]) for i in range(0, len(padded), n)])[: len(x)]
