"""Own sequence data in: .npz and UEA/UCR .ts files, and every bad-data case as one DataError line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_lstm.data import sequences
from edge_lstm.data.ts_format import read_ts
from edge_lstm.errors import DataError

SERIES = Path(__file__).resolve().parents[2] / "data" / "series"

TS_HEADER = """# a comment
% another (aeon's files have both)
@problemName Tiny
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_two_shipped_sets_read_as_the_archive_describes_them() -> None:
    bm = sequences.load(SERIES / "BasicMotions_TRAIN.ts")
    assert bm.x.shape == (40, 100, 6) and bm.equal_length and len(bm.classes) == 4
    assert bm.classes == ("Standing", "Running", "Walking", "Badminton")  # @classLabel's order
    jv = sequences.load(SERIES / "JapaneseVowels_TRAIN.ts")
    assert jv.features == 12 and not jv.equal_length and (jv.lengths.min(), jv.lengths.max()) == (7, 26)
    test = sequences.load(SERIES / "JapaneseVowels_TEST.ts", jv.classes)
    assert len(test) == 370 and test.lengths.max() == 29
    # padding after each sequence's length is zero
    i = int(np.argmin(jv.lengths))
    assert not jv.x[i, jv.lengths[i] :].any() and jv.x[i, : jv.lengths[i]].any()


def test_ts_univariate_unequal_with_trailing_missing_values(tmp_path: Path) -> None:
    text = TS_HEADER.replace("@dimensions 2", "@dimensions 1").replace("@univariate false", "@univariate true")
    f = write(tmp_path / "u.ts", text + "1,2,3:up\n4,5,?,?:down\n")
    data = sequences.load(f)
    assert data.x.shape == (2, 3, 1) and data.lengths.tolist() == [3, 2] and data.labels.tolist() == [0, 1]


def test_npz_with_string_labels_and_lengths(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype(np.float32)
    y = np.array(["walk", "run", "walk", "run", "sit", "sit"])
    np.savez(tmp_path / "d.npz", x=x, y=y, lengths=np.array([5, 4, 3, 5, 2, 1]))
    data = sequences.load(tmp_path / "d.npz")
    assert data.classes == ("run", "sit", "walk") and data.labels.tolist() == [2, 0, 2, 0, 1, 1]
    assert not data.x[5, 1:].any()
    np.savez(tmp_path / "flat.npz", x=x[:, :, 0], y=np.arange(6) % 2)  # (N, T): one feature
    assert sequences.load(tmp_path / "flat.npz").x.shape == (6, 5, 1)


def bad_npz(tmp_path: Path, **arrays: object) -> Path:
    np.savez(tmp_path / "bad.npz", **arrays)  # type: ignore[arg-type]
    return tmp_path / "bad.npz"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: bad_npz(p, x=np.zeros((4, 3, 2)), y=np.zeros(4, int)), "two classes or more"),
        (lambda p: bad_npz(p, x=np.full((4, 3, 2), np.nan), y=np.arange(4)), "NaN or infinite"),
        (lambda p: bad_npz(p, x=np.zeros((4, 3, 2)), y=np.arange(3)), "one label per sequence"),
        (lambda p: bad_npz(p, x=np.zeros((4, 3, 2)), y=np.arange(4), lengths=np.array([1, 2, 3, 9])), "between 1"),
        (lambda p: bad_npz(p, x=np.zeros((4, 3, 2))), "needs `x`"),
        (lambda p: bad_npz(p, x=np.zeros((4, 3, 2)), y=np.array([0.5, 1, 2, 3])), "fractional"),
        (lambda p: write(p / "t.npz", "not a zip"), "not a readable .npz"),
        (
            lambda p: write(p / "h.ts", TS_HEADER.replace("@dimensions 2", "@dimensions 3") + "1,2:3,4:up\n1:2:down\n"),
            "@dimensions 3",
        ),
        (
            lambda p: write(
                p / "e.ts", TS_HEADER.replace("@equalLength false", "@equalLength true") + "1,2:3,4:up\n1:2:down\n"
            ),
            "@equalLength true",
        ),
        (lambda p: write(p / "l.ts", TS_HEADER + "1,2:3,4:left\n"), "not among @classLabel"),
        (lambda p: write(p / "m.ts", TS_HEADER + "1,?,2:3,4,5:up\n"), "missing or infinite value inside"),
        (lambda p: write(p / "c.ts", TS_HEADER + "1,2,3:3,4:up\n"), "same number of values"),
        (lambda p: write(p / "r.ts", "@problemName r\n@targetLabel true\n@data\n1,2:0.5\n"), "regression"),
        (lambda p: write(p / "n.ts", "just text\n"), "expected a @header"),
        (
            lambda p: write(p / "s.ts", "@problemName s\n@timeStamps true\n@classLabel true 1 2\n@data\n(1,2):1\n"),
            "time stamps",
        ),
        (lambda p: p / "missing.ts", "not found"),
    ],
)
def test_bad_data_is_one_line(tmp_path: Path, make: object, says: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(DataError) as e:
        sequences.load(path)
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_ragged_object_arrays_are_refused_with_what_to_do(tmp_path: Path) -> None:
    x = np.empty(2, object)
    x[0], x[1] = np.zeros((3, 2)), np.zeros((4, 2))
    np.savez(tmp_path / "r.npz", x=x, y=np.arange(2))  # numpy pickles object arrays
    with pytest.raises(DataError, match="ragged"):
        sequences.load(tmp_path / "r.npz")


def test_test_labels_the_training_set_lacks_are_refused(tmp_path: Path) -> None:
    x = np.zeros((4, 3, 2), np.float32)
    np.savez(tmp_path / "tr.npz", x=x, y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "te.npz", x=x, y=np.array([0, 1, 2, 1]))
    train = sequences.load(tmp_path / "tr.npz")
    with pytest.raises(DataError, match=r"labels \['2'\] are not among the training set's classes"):
        sequences.load(tmp_path / "te.npz", train.classes)


def test_split_is_stratified_and_deterministic() -> None:
    data = sequences.load(SERIES / "BasicMotions_TRAIN.ts")
    a_train, a_test = sequences.split(data, 0.2, 1)
    _, b_test = sequences.split(data, 0.2, 1)
    assert np.array_equal(a_test.x, b_test.x) and len(a_train) + len(a_test) == 40
    assert sorted(np.bincount(a_test.labels).tolist()) == [2, 2, 2, 2]


def test_read_ts_names_the_line_of_a_bad_value(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"t\.ts:12: channel 2 has a value that is not a number"):
        read_ts(write(tmp_path / "t.ts", TS_HEADER + "1,2:3,4:up\n1,2:x,4:down\n"))


def test_inputs_to_classify_from_csv_npy_npz(tmp_path: Path) -> None:
    write(tmp_path / "s.csv", "ax,ay\n1,2\n3,4\n5,6\n")
    x, lengths = sequences.read_inputs(tmp_path / "s.csv")
    assert x.shape == (1, 3, 2) and lengths.tolist() == [3]
    np.save(tmp_path / "s.npy", np.zeros((2, 4, 3)))
    assert sequences.read_inputs(tmp_path / "s.npy")[0].shape == (2, 4, 3)
    write(tmp_path / "bad.csv", "1,2\n3,oops\n")
    with pytest.raises(DataError, match=r"bad\.csv:2"):
        sequences.read_inputs(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    ("typo", "says"),
    [
        ("@problemName Tiny", r"h\.ts:3: unknown header @problemNmae \(did you mean @problemName\?\)"),
        ("@classLabel true up down", r"h\.ts:\d+: unknown header @classLable \(did you mean @classLabel\?\)"),
        ("@dimensions 2", r"h\.ts:\d+: @dimensions is given twice \(first on line \d+\)"),
    ],
)
def test_header_typos_are_refused_with_their_line(tmp_path: Path, typo: str, says: str) -> None:
    wrong = {
        "@problemName Tiny": "@problemNmae Tiny",
        "@classLabel true up down": "@classLable true up down",
        "@dimensions 2": "@dimensions 2\n@dimensions 2",
    }[typo]
    text = TS_HEADER.replace(typo, wrong) + "1,2:3,4:up\n"
    with pytest.raises(DataError, match=says):
        read_ts(write(tmp_path / "h.ts", text))


def test_a_missing_class_label_line_names_the_data_line(tmp_path: Path) -> None:
    text = "".join(ln + "\n" for ln in TS_HEADER.splitlines() if not ln.startswith("@classLabel"))
    with pytest.raises(DataError, match=r"h\.ts:\d+: no @classLabel line before @data"):
        read_ts(write(tmp_path / "h.ts", text + "1,2:3,4:up\n"))
