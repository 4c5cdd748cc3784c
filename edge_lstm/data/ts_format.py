"""The `.ts` files of the UEA/UCR time-series archives (the format those communities publish in).

Written here rather than taken from aeon or sktime: their readers come with numba, scikit-learn and
pandas (hundreds of MB that an edge device running `eval` should not need), while the format is a
header and one line a case; this reader is numpy only, streams the file, and checks the header
against the data (aeon's reader trusts `@dimensions` and `@seriesLength`).

Lines starting with `#` or `%` are comments. Header keys (case-insensitive): `@problemName`,
`@timeStamps`, `@missing`, `@univariate`,
`@dimensions N`, `@equalLength true|false`, `@seriesLength L`, `@classLabel true L1 L2 ...`,
`@targetLabel true` (regression: refused), then `@data`; any other key (a typo, say) is refused with
its line, as aeon's reader does. A case is its channels separated by `:`,
values by `,`, the class label last; `?` is a missing value. Trailing `?`s of a channel are taken as
padding (its sequence ended); a `?` inside a sequence is a missing value and is refused.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_lstm.errors import DataError

MAX_CASES = 1_000_000  # bounds memory on a file that is not what it claims to be
KEYS = {  # the header keys of the archives' format, lower case -> as the format spells them
    k.lower(): k
    for k in (
        "problemName",
        "timeStamps",
        "missing",
        "univariate",
        "dimensions",
        "equalLength",
        "seriesLength",
        "classLabel",
        "targetLabel",
        "data",
    )
}


@dataclass
class TsFile:
    cases: list[np.ndarray] = field(default_factory=list)  # each (T_i, F) float32
    labels: list[str] = field(default_factory=list)
    class_labels: tuple[str, ...] = ()  # as @classLabel declares them (their order is kept)
    problem: str = ""


def _flag(value: str, key: str, path: Path) -> bool:
    if value.lower() not in ("true", "false"):
        raise DataError(f"{path}: header @{key} is {value!r}, expected true or false")
    return value.lower() == "true"


def read_ts(path: Path) -> TsFile:
    """Read a `.ts` classification file; every inconsistency is one DataError line naming the file."""
    path = Path(path)
    header: dict[str, str] = {}
    lines: dict[str, int] = {}  # the line of each header key, for the messages
    out = TsFile()
    in_data = False
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 (closed below; one try for open and read errors)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror})") from None
    with f:
        try:
            for number, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith(("#", "%")):  # aeon's files use both for comments
                    continue
                if not in_data:
                    if not line.startswith("@"):
                        raise DataError(f"{path}:{number}: expected a @header line or @data before the data")
                    key, _, value = line[1:].partition(" ")
                    key = _known(key, path, number)
                    if key in header:
                        raise DataError(f"{path}:{number}: @{KEYS[key]} is given twice (first on line {lines[key]})")
                    lines[key] = number
                    if key == "data":
                        in_data = True
                        _check_header(header, path, lines, number)
                        labels = header.get("classlabel", "").split()
                        out.class_labels = tuple(labels[1:])
                        out.problem = header.get("problemname", path.stem)
                    else:
                        header[key] = value.strip()
                    continue
                if len(out.cases) >= MAX_CASES:
                    raise DataError(f"{path}: more than {MAX_CASES:,} cases; split the file")
                series, label = _case(line, path, number)
                out.cases.append(series)
                out.labels.append(label)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file (a .ts file is UTF-8 text)") from None
    if not in_data:
        raise DataError(f"{path}: no @data line: not a .ts file of the UEA/UCR archives")
    if not out.cases:
        raise DataError(f"{path}: no cases after @data")
    _check_data(out, header, path)
    return out


def _known(key: str, path: Path, number: int) -> str:
    if key.lower() in KEYS:
        return key.lower()
    close = difflib.get_close_matches(key.lower(), list(KEYS), n=1, cutoff=0.6)
    hint = (
        f" (did you mean @{KEYS[close[0]]}?)"
        if close
        else f"; the keys are {', '.join('@' + k for k in KEYS.values())}"
    )
    raise DataError(f"{path}:{number}: unknown header @{key}{hint}")


def _check_header(header: dict[str, str], path: Path, lines: dict[str, int], data_line: int) -> None:
    def at(key: str) -> str:
        return f"{path}:{lines[key]}"

    def flag(key: str, value: str) -> bool:
        return _flag(value, KEYS[key], Path(at(key)))

    if "timestamps" in header and flag("timestamps", header["timestamps"]):
        raise DataError(
            f"{at('timestamps')}: values with time stamps (@timeStamps true) are not read; write the values alone"
        )
    if "targetlabel" in header and flag("targetlabel", (header["targetlabel"].split() or [""])[0]):
        raise DataError(f"{at('targetlabel')}: a regression set (@targetLabel true); edge-lstm trains classifiers")
    if "classlabel" not in header:
        raise DataError(
            f"{path}:{data_line}: no @classLabel line before @data (@classLabel true followed by the class names)"
        )
    labels = header["classlabel"].split()
    if not labels or not flag("classlabel", labels[0]) or len(labels) < 2:
        raise DataError(f"{at('classlabel')}: @classLabel must be `true` followed by the class names")
    for key in ("dimensions", "serieslength"):
        if key in header and not header[key].isdigit():
            raise DataError(f"{at(key)}: header @{KEYS[key]} is {header[key]!r}, expected a whole number")


def _case(line: str, path: Path, number: int) -> tuple[np.ndarray, str]:
    *channels, label = line.split(":")
    label = label.strip()
    if not channels or not label:
        raise DataError(f"{path}:{number}: a case must be channels separated by ':' and its class label last")
    rows: list[list[float]] = []
    for k, text in enumerate(channels):
        values = text.split(",")
        while values and values[-1].strip() == "?":  # trailing ? = padding of a shorter sequence
            values.pop()
        try:
            parsed = [float("nan") if v.strip() == "?" else float(v) for v in values]
        except ValueError:
            raise DataError(f"{path}:{number}: channel {k + 1} has a value that is not a number") from None
        if any(math.isnan(v) or math.isinf(v) for v in parsed):
            raise DataError(
                f"{path}:{number}: channel {k + 1} has a missing or infinite value inside the sequence; "
                "fill or drop that case"
            )
        rows.append(parsed)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1 or 0 in lengths:
        raise DataError(
            f"{path}:{number}: its channels have lengths {sorted(lengths)}; every channel of a case needs the "
            "same number of values"
        )
    return np.asarray(rows, np.float32).T.copy(), label  # (T, F)


def _check_data(out: TsFile, header: dict[str, str], path: Path) -> None:
    n_features = {c.shape[1] for c in out.cases}
    if len(n_features) != 1:
        raise DataError(f"{path}: cases have {sorted(n_features)} channels; every case needs the same number")
    features = n_features.pop()
    declared = header.get("dimensions")
    univariate = header.get("univariate")
    if declared is not None and int(declared) != features:
        raise DataError(f"{path}: the header says @dimensions {declared} but the cases have {features} channels")
    if univariate is not None and _flag(univariate, "univariate", path) and features != 1:
        raise DataError(f"{path}: the header says @univariate true but the cases have {features} channels")
    lengths = {c.shape[0] for c in out.cases}
    equal = header.get("equallength")
    if equal is not None and _flag(equal, "equalLength", path) and len(lengths) != 1:
        raise DataError(
            f"{path}: the header says @equalLength true but the cases have lengths {min(lengths)} to {max(lengths)}"
        )
    if "serieslength" in header and lengths != {int(header["serieslength"])}:
        raise DataError(
            f"{path}: the header says @seriesLength {header['serieslength']} but the cases have "
            f"lengths {min(lengths)} to {max(lengths)}"
        )
    unknown = sorted(set(out.labels) - set(out.class_labels))
    if unknown:
        raise DataError(f"{path}: class labels {unknown[:5]} are not among @classLabel's {list(out.class_labels)}")
