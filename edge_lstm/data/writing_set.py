"""The real-writing test set: digits that are not MNIST's test images, as `predict` sees them.

`data/writing/writing.npz` (made by `python bench/writing.py build`) holds every picture already
normalised the way `predict` normalises it (runtime/preprocess.py), so reading it needs numpy only
and scoring a model is one batched forward pass (`train` reports it at the end of every run):

- drawn: digits drawn with a mouse in the page (`edge-lstm web`), in Chromium through Playwright,
  from the stroke shapes of data/writing.py, many pen widths, speeds and slants;
- thin_pen: those shapes drawn with a 1-4 pixel brush on a 200-800 pixel canvas, as in a paint program;
- photographed: those shapes in pen, pencil and marker on unevenly lit, shadowed, tilted paper;
- people: the UCI handwritten digits of 43 people that scikit-learn ships (8x8 scans), as pictures;
- mnist_pictures: MNIST test digits rendered as real pictures look (data/pictures.py's families);
- boxy: heavy digits stretched to fill their box, bar-like 1s, open 4s, from fonts training never
  sees (data/boxy.py), photographed.

A picture the normalisation refuses ("no digit found") is kept as a zero image and counts as wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import DataError

WRITING_FILE = Path(__file__).resolve().parents[2] / "data" / "writing" / "writing.npz"
FAMILIES = ("drawn", "thin_pen", "photographed", "people", "mnist_pictures", "boxy")


@dataclass(frozen=True)
class WritingSet:
    images: np.ndarray  # (N, 28, 28) uint8, normalised as predict does
    labels: np.ndarray  # (N,) int64
    family: np.ndarray  # (N,) index into `families`
    refused: np.ndarray  # (N,) bool: the normalisation found no digit (counts as wrong)
    families: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def load_writing_set(path: Path = WRITING_FILE) -> WritingSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            ws = WritingSet(
                z["images"],
                z["labels"].astype(np.int64),
                z["family"].astype(np.int64),
                z["refused"].astype(bool),
                tuple(str(f) for f in z["families"]),
            )
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise DataError(
            f"{path}: not a readable real-writing set ({str(e)[:100]}); make it with `python bench/writing.py build`"
        ) from None
    if ws.images.shape != (len(ws), 28, 28) or ws.images.dtype != np.uint8 or len(ws.family) != len(ws):
        raise DataError(f"{path}: images {ws.images.dtype} {ws.images.shape} do not match {len(ws)} labels")
    return ws


def score(ws: WritingSet, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy overall, per family, and per digit with its confusion (rows: truth, columns: answer)."""
    right = (np.asarray(predicted) == ws.labels) & ~ws.refused
    out: dict[str, Any] = {"n": len(ws), "accuracy": float(right.mean()), "families": {}}
    for k, name in enumerate(ws.families):
        m = ws.family == k
        if not m.any():
            continue
        confusion = np.zeros((10, 11), np.int64)  # column 10: refused ("no digit found")
        answers = np.where(ws.refused[m], 10, predicted[m])
        np.add.at(confusion, (ws.labels[m], answers), 1)
        per_digit = {str(d): float(confusion[d, d] / max(1, confusion[d].sum())) for d in range(10)}
        out["families"][name] = {
            "n": int(m.sum()),
            "accuracy": float(right[m].mean()),
            "refused": int(ws.refused[m].sum()),
            "per_digit": per_digit,
            "confusion": confusion.tolist(),
        }
    return out


def summary_line(scored: dict[str, Any]) -> str:
    """'real writing 93.1% (drawn 95.0%, photographed 92.3%, ...)' for the training log."""
    parts = ", ".join(f"{name} {100 * f['accuracy']:.1f}%" for name, f in scored["families"].items())
    return f"real writing {100 * scored['accuracy']:.1f}% ({parts})"


NONDIGITS_FILE = WRITING_FILE.with_name("nondigits.npz")


@dataclass
class NonDigitSet:
    """Pictures that hold no digit (data/nondigits.py), normalised as `predict` normalises them."""

    images: np.ndarray  # (N, 28, 28) uint8 (zeros where the normalisation refused the picture)
    family: np.ndarray  # (N,) index into families
    refused: np.ndarray  # (N,) bool: the normalisation itself said "no digit"
    families: tuple[str, ...]


def load_nondigits(path: Path = NONDIGITS_FILE) -> NonDigitSet:
    if not path.is_file():
        raise DataError(f"{path} not found: build it with `python bench/writing.py build`")
    with np.load(path) as z:
        return NonDigitSet(z["images"], z["family"], z["refused"].astype(bool), tuple(str(f) for f in z["families"]))


def refusals(
    ws: WritingSet, nd: NonDigitSet, digit_probs: np.ndarray, other_probs: np.ndarray, below: float | None
) -> dict[str, Any]:
    """ "No digit" as `predict` decides it (the normalisation's refusal, or a top probability under
    `below`): the share of non-digits refused, per family, and of real digits wrongly refused, with the
    share of the digits the model refuses that it would have read wrong."""
    cut = -1.0 if below is None else below
    no_digit = nd.refused | (other_probs.max(1) < cut)
    by_model = ~ws.refused & (digit_probs.max(1) < cut)
    wrong = digit_probs.argmax(1) != ws.labels
    return {
        "no_digit_below": below,
        "non_digits_refused": float(no_digit.mean()),
        "per_family": {f: float(no_digit[nd.family == k].mean()) for k, f in enumerate(nd.families)},
        "digits_wrongly_refused": float((ws.refused | by_model).mean()),
        "digits_refused_by_the_normalisation": float(ws.refused.mean()),
        "refused_by_the_model_read_wrong": float(wrong[by_model].mean()) if by_model.any() else None,
    }
