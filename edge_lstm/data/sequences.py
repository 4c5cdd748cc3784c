"""A user's own labelled sequences (sensor channels, speech features): `train --data`, `eval --data`.

Two formats: `.npz` with `x` (N, T, F) or (N, T) float, `y` (N,) integer or string labels and
optionally `lengths` (N,) for padded variable-length sequences; and the `.ts` files of the UEA/UCR
archives (edge_lstm.data.ts_format). Both become one SequenceSet: zero-padded (N, T, F) float32,
lengths, class indices and class names. numpy only: the deployment side evaluates files with it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_lstm.arch import Arch
from edge_lstm.data.ts_format import read_ts
from edge_lstm.errors import DataError
from edge_lstm.fileio import not_a_file

SUFFIXES = (".npz", ".ts")


@dataclass(frozen=True)
class SequenceSet:
    x: np.ndarray  # (N, T, F) float32; steps past a sequence's length are 0
    lengths: np.ndarray  # (N,) int64, 1..T
    labels: np.ndarray  # (N,) int64 indices into classes
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def features(self) -> int:
        return int(self.x.shape[2])

    @property
    def equal_length(self) -> bool:
        return bool((self.lengths == self.x.shape[1]).all())

    def subset(self, index: np.ndarray) -> SequenceSet:
        x, lengths = self.x[index], self.lengths[index]
        return SequenceSet(x[:, : int(lengths.max())], lengths, self.labels[index], self.classes, self.source)


def is_sequence_file(path: Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def load(path: Path, classes: Sequence[str] | None = None) -> SequenceSet:
    """Read a .npz or .ts set. classes: the training set's class names (a test set is read with them,
    and a label they lack is refused)."""
    path = Path(path)
    if (why := not_a_file(path)) is not None:
        raise DataError(f"data file {path} {why}")
    suffix = path.suffix.lower()
    if suffix == ".ts":
        ts = read_ts(path)
        x, lengths = _pad(ts.cases)
        return _labelled(x, lengths, np.asarray(ts.labels), ts.class_labels, classes, path)
    if suffix == ".npz":
        x, y, lengths = _read_npz(path)
        return _labelled(x, lengths, y, None, classes, path)
    raise DataError(f"{path}: sequence data is a .npz (x, y, optional lengths) or a UEA/UCR .ts file")


def for_model(data: Path | None, arch: Arch, model: Path, limit: int | None = None) -> SequenceSet:
    """A model's labelled test sequences, checked against its arch."""
    if data is None:
        raise DataError(
            f"{model} classifies sequences of {arch.features} feature(s): give its labelled test sequences "
            "with --data FILE (.npz or .ts)"
        )
    seqs = load(data, arch.classes)
    if seqs.features != arch.features or (arch.steps is not None and seqs.x.shape[1] != arch.steps):
        raise DataError(
            f"{data}: its sequences are ({seqs.x.shape[1]}, {seqs.features}) steps x features; "
            f"{model} takes ({arch.steps or 'any'}, {arch.features})"
        )
    return seqs if limit is None else seqs.subset(np.arange(min(limit, len(seqs))))


def _pad(cases: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(c) for c in cases], np.int64)
    x = np.zeros((len(cases), int(lengths.max()), cases[0].shape[1]), np.float32)
    for i, c in enumerate(cases):
        x[i, : len(c)] = c
    return x, lengths


def _read_npz(path: Path, labelled: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in (("x", "y") if labelled else ("x",)) if k not in z.files]
            if missing:
                raise DataError(f"{path}: has arrays {z.files}; sequence data needs `x` (N, T, F) and `y` (N,)")
            x = z["x"]
            y = z["y"] if labelled else np.zeros(len(x), np.int64)
            lengths = z["lengths"] if "lengths" in z.files else None
    except ValueError as e:
        if "Object arrays" in str(e):
            raise DataError(
                f"{path}: `x` is ragged (an object array); pad the sequences to (N, T, F) and give their `lengths`"
            ) from None
        raise DataError(f"{path}: not a readable .npz ({str(e).splitlines()[0][:120]})") from None
    except (OSError, zipfile.BadZipFile, EOFError):
        raise DataError(f"{path}: not a readable .npz (truncated or not a numpy archive)") from None
    if x.ndim == 2:
        x = x[:, :, None]  # (N, T): one feature per step
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{path}: `x` has shape {x.shape}; expected (N, T, F) or (N, T) with N, T, F >= 1")
    if x.dtype.kind not in "fiu":
        raise DataError(f"{path}: `x` is {x.dtype}; expected numbers")
    if y.shape != (x.shape[0],):
        raise DataError(f"{path}: `y` has shape {y.shape}; expected ({x.shape[0]},), one label per sequence")
    if lengths is None:
        lengths = np.full(len(x), x.shape[1], np.int64)
    elif lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
        raise DataError(f"{path}: `lengths` has shape {lengths.shape} ({lengths.dtype}); expected ({len(x)},) integers")
    elif lengths.min() < 1 or lengths.max() > x.shape[1]:
        raise DataError(f"{path}: `lengths` must be between 1 and {x.shape[1]} (the padded length)")
    x = x.astype(np.float32)
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    if not np.isfinite(x[valid]).all():
        raise DataError(f"{path}: `x` has NaN or infinite values inside the sequences; fill or drop those cases")
    x[~valid] = 0.0
    return x, y, lengths.astype(np.int64)


def _labelled(
    x: np.ndarray,
    lengths: np.ndarray,
    y: np.ndarray,
    declared: Sequence[str] | None,
    classes: Sequence[str] | None,
    path: Path,
) -> SequenceSet:
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{path}: `y` has fractional or NaN values; labels are integers or strings")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuUS":
        raise DataError(f"{path}: `y` is {y.dtype}; labels are integers or strings")
    names = np.array([str(v) for v in y.tolist()]) if y.dtype.kind != "U" else y
    present = set(names.tolist())
    if classes is None:
        if declared:
            classes = tuple(declared)
        elif y.dtype.kind in "iu":
            classes = tuple(str(v) for v in sorted(set(y.tolist())))
        else:
            classes = tuple(sorted(present))
        if len(present) < 2:
            raise DataError(
                f"{path}: every sequence has the label {names[0]!r}; a classifier needs two classes or more"
            )
    unknown = sorted(present - set(classes))
    if unknown:
        raise DataError(
            f"{path}: labels {unknown[:5]} are not among the training set's classes {list(classes)[:12]}; "
            "train on data that has them"
        )
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[n] for n in names.tolist()], np.int64)
    return SequenceSet(x, lengths, labels, tuple(classes), str(path))


def read_inputs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Unlabelled sequences to classify (`predict`): (x (N, T, F) float32, lengths (N,)).

    .npy: (T, F), (N, T, F), or (T,) for one feature; .npz: `x` and optionally `lengths` (labels are
    not needed); .csv: one sequence, a line per time step, its F values separated by commas (a
    first line that is not numbers is a header); .ts: every case of a UEA/UCR file.
    """
    path = Path(path)
    if (why := not_a_file(path)) is not None:
        raise DataError(f"{path} {why}")
    suffix = path.suffix.lower()
    if suffix == ".ts":
        ts = read_ts(path)
        return _pad(ts.cases)
    if suffix == ".npz":
        x, _, lengths = _read_npz(path, labelled=False)
        return x, lengths
    if suffix == ".csv":
        x = _read_csv(path)[None]
    elif suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise DataError(f"{path}: not a readable .npy array") from None
        x = x[:, None] if x.ndim == 1 else x
        x = x[None] if x.ndim == 2 else x
    else:
        raise DataError(f"{path}: sequences to classify are .npy, .npz, .csv (a line per step) or .ts files")
    if x.ndim != 3 or 0 in x.shape or x.dtype.kind not in "fiu":
        raise DataError(f"{path}: shape {x.shape} ({x.dtype}); expected numbers as (T, F) or (N, T, F)")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: NaN or infinite values; fill or drop them")
    return x, np.full(len(x), x.shape[1], np.int64)


def _read_csv(path: Path) -> np.ndarray:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError):
        raise DataError(f"{path}: not a readable text file") from None
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            if number == 1:
                continue  # a header
            raise DataError(f"{path}:{number}: a value that is not a number") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise DataError(f"{path}: expected lines of the same number of comma-separated values, one per time step")
    return np.asarray(rows, np.float32)


def split(data: SequenceSet, test_fraction: float, seed: int) -> tuple[SequenceSet, SequenceSet]:
    """A stratified split (each class's share of the test part is test_fraction, at least one case)."""
    rng = np.random.default_rng(seed)
    test: list[int] = []
    for k in range(len(data.classes)):
        members = np.flatnonzero(data.labels == k)
        if len(members) < 2:
            continue  # a class with one case stays in training
        test += rng.choice(members, max(1, round(test_fraction * len(members))), replace=False).tolist()
    mask = np.zeros(len(data), bool)
    mask[test] = True
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))


def feature_stats(data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the real (unpadded) steps."""
    valid = np.arange(data.x.shape[1])[None, :] < data.lengths[:, None]
    values = data.x[valid].astype(np.float64)  # (steps, F)
    std = values.std(axis=0)
    return values.mean(axis=0).astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
