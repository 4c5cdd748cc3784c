"""The few image operations MNIST normalisation needs, written so that the browser page computes
the same numbers: `edge_lstm/web/assets/preprocess.js` mirrors every function here line for line.

Written by hand, not taken from Pillow, because bit-identical results in two languages need the
same algorithm AND the same order of floating-point operations: every sum here runs in a fixed,
sequential order (np.cumsum, explicit loops over the input index), there is no BLAS and no fused
multiply-add, and rounding is floor(x + 0.5) on both sides. Arrays are float64 (JavaScript's number).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def seq_sum(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sum in index order (numpy's .sum is pairwise; JavaScript's loop is sequential)."""
    return np.take(np.cumsum(values, axis=axis), -1, axis=axis)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): each output pixel averages the input interval it covers (exact box integration)."""
    s = n_in / n_out
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        lo, hi = o * s, (o + 1) * s
        for i in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
            overlap = min(hi, i + 1) - max(lo, i)
            if overlap > 0:
                w[o, i] = overlap / s
    return w


def _resize_axis0(x: np.ndarray, n_out: int) -> np.ndarray:
    n_in = x.shape[0]
    if n_out <= n_in:  # shrinking: area average (anti-aliased, as MNIST's own normalisation)
        w = _area_weights(n_in, n_out)
        acc = np.zeros((n_out, *x.shape[1:]))
        for i in range(n_in):  # sequential over the input index, zero weights included (as in JS)
            acc = acc + w[:, i, None] * x[i][None, :]
        return acc
    # growing: bilinear with pixel centres at (o + 0.5) * n_in / n_out - 0.5, clamped to the edge
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = (src - i0)[:, None]
    return x[i0] * (1 - t) + x[i1] * t


def resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) -> (height, width): rows first, then columns."""
    return _resize_axis0(_resize_axis0(img, height).T, width).T


def _pad(img: np.ndarray, r: int) -> np.ndarray:
    return np.pad(img, r, mode="edge")


def min_filter(img: np.ndarray, size: int) -> np.ndarray:
    return _rank(img, size, np.min)


def max_filter(img: np.ndarray, size: int) -> np.ndarray:
    return _rank(img, size, np.max)


def _rank(img: np.ndarray, size: int, op: Callable[..., np.ndarray]) -> np.ndarray:
    r = size // 2
    p = _pad(img, r)
    h, w = img.shape
    windows = np.lib.stride_tricks.sliding_window_view(p, (size, size))[:h, :w]
    return op(windows, axis=(2, 3))


def median3(img: np.ndarray, band: int = 64) -> np.ndarray:
    """3x3 median, edges replicated (removes single-pixel noise, keeps strokes). Computed in bands of
    rows: the 9 neighbours of a whole 1024 x 1024 picture at once would take 150 MB."""
    h, w = img.shape
    p = _pad(img, 1)
    out = np.empty((h, w))
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        windows = np.lib.stride_tricks.sliding_window_view(p[r0 : r1 + 2], (3, 3))[:, :w].reshape(r1 - r0, w, 9)
        out[r0:r1] = np.sort(windows, axis=2)[:, :, 4]
    return out


def blur5(img: np.ndarray) -> np.ndarray:
    """Binomial [1, 4, 6, 4, 1] / 16 blur, rows then columns, edges replicated."""

    def one(x: np.ndarray) -> np.ndarray:
        p = np.pad(x, ((2, 2), (0, 0)), mode="edge")
        n = x.shape[0]
        return ((((p[0:n] + 4 * p[1 : n + 1]) + 6 * p[2 : n + 2]) + 4 * p[3 : n + 3]) + p[4 : n + 4]) / 16

    return one(one(img).T).T


def dilate(img: np.ndarray, size: int) -> np.ndarray:
    """Max over each pixel's size x size square (size odd), edges replicated: as a row max then a
    column max, so a wide square costs 2 x size per pixel (max is exact: any order gives the same)."""
    r = size // 2

    def rows(a: np.ndarray) -> np.ndarray:
        p = np.pad(a, ((0, 0), (r, r)), mode="edge")
        return np.lib.stride_tricks.sliding_window_view(p, size, axis=1).max(axis=2)

    return rows(rows(img).T).T


def stroke_width(ink: np.ndarray, level: float) -> float:
    """The strokes' width in pixels: 2 x area / edge pixels of the ink above `level` (a stroke of width
    w and length L has area w*L and 2*L edge pixels; a 1-pixel line reads 2). Integer counts: exact."""
    on = ink > level
    p = np.pad(on, 1)
    inner = on & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    area = int(on.sum())
    edge = area - int(inner.sum())
    return 2.0 * area / max(edge, 1)
