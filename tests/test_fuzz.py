"""Property-based fuzzing of the three parsers a user's bytes reach: the IDX reader, the picture
loader and the model-file check. Random and mutated inputs may be accepted or refused, but only
ever refused with the library's own typed error (never a crash or a foreign exception)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from edge_lstm.data import mnist
from edge_lstm.errors import DataError, EdgeLstmError, InputError
from edge_lstm.runtime import Classifier
from edge_lstm.runtime.preprocess import load_inputs


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid file with a few bytes flipped, cut short, or with bytes inserted or deleted."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


IDX = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 2, 28, 28) + bytes(range(256)) * 6 + bytes(32)
_png = io.BytesIO()
Image.fromarray(np.arange(28 * 28, dtype=np.uint16).reshape(28, 28).astype(np.uint8)).save(_png, format="PNG")
PNG = _png.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2000), mutated(IDX)))
def test_idx_reader(data: bytes) -> None:
    try:
        arr = mnist.parse_idx(data, "fuzz.idx")
    except DataError:
        return
    assert arr.nbytes == len(data) - 4 - 4 * arr.ndim


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=600), mutated(PNG)), suffix=st.sampled_from([".png", ".jpg", ".npy", ".gz"]))
@example(data=b"PK\x03\x04", suffix=".npy")  # found by this test: numpy reads a "PK" file as .npz (BadZipFile)
def test_picture_and_array_loader(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        images = load_inputs(path)
    except InputError:
        return
    assert images.ndim == 3 and images.shape[1:] == (28, 28)


@pytest.fixture(scope="module")
def model_bytes(exported: dict[str, Path]) -> bytes:
    return exported["fp32"].read_bytes()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_model_file_check(model_bytes: bytes, data: st.DataObject) -> None:
    blob = data.draw(st.one_of(st.binary(max_size=3000), mutated(model_bytes)))
    try:
        clf = Classifier(blob)
    except EdgeLstmError:
        return
    # Accepted: then it must really be a classifier that answers for a batch.
    assert clf.logits(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)


def test_an_npz_under_a_npy_name_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    with open(path, "wb") as f:
        np.savez(f, x=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(InputError, match=r"an \.npz archive of arrays, not one \.npy array"):
        load_inputs(path)
