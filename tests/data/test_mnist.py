from __future__ import annotations

import gzip
import http.server
import shutil
import socketserver
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_lstm.data import mnist
from edge_lstm.errors import DataError, DownloadError


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_parse_good_images_and_labels() -> None:
    imgs = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)
    out = mnist.parse_idx(idx_bytes(imgs))
    assert out.shape == (3, 28, 28) and np.array_equal(out, imgs)
    labels = mnist.parse_idx(idx_bytes(np.array([1, 2, 9], np.uint8)))
    assert labels.tolist() == [1, 2, 9]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x12\x34\x08\x01\x00\x00\x00\x01\x05", "bad magic"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x01\x05", "unknown IDX data type"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "trailing bytes"),
    ],
)
def test_parse_rejects_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        mnist.parse_idx(data, "f.idx")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_parse_fuzz_never_crashes_otherwise(data: bytes) -> None:
    # Any byte string either parses into an array whose size matches the header, or raises DataError.
    try:
        arr = mnist.parse_idx(data)
    except DataError:
        return
    assert arr.nbytes == len(data) - 4 - 4 * arr.ndim


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=0, max_size=50), st.integers(0, 60))
def test_parse_fuzz_truncation_is_detected(values: list[int], cut: int) -> None:
    data = idx_bytes(np.array(values, np.uint8))
    cut = min(cut, len(data))
    if cut == 0:
        assert mnist.parse_idx(data).tolist() == values
    else:
        with pytest.raises(DataError):
            mnist.parse_idx(data[:-cut])


def test_count_mismatch_and_label_range() -> None:
    with pytest.raises(DataError, match="2 images but 3 labels"):
        mnist.validate_pair(np.zeros((2, 28, 28), np.uint8), np.zeros(3, np.uint8), "x")
    with pytest.raises(DataError, match="out of range"):
        mnist.validate_pair(np.zeros((1, 28, 28), np.uint8), np.array([10], np.uint8), "x")
    with pytest.raises(DataError, match=r"\(N, 28, 28\)"):
        mnist.validate_pair(np.zeros((1, 27, 28), np.uint8), np.array([1], np.uint8), "x")


def test_bundled_mnist_loads_and_verifies(data_dir: Path) -> None:
    test = mnist.load_split(data_dir, "test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_raw_idx_and_checksum(tmp_path: Path, data_dir: Path) -> None:
    for stem in mnist.FILES:
        (tmp_path / stem).write_bytes(gzip.decompress((data_dir / f"{stem}.gz").read_bytes()))
    assert len(mnist.load_split(tmp_path, "test")) == 10000
    raw = bytearray((tmp_path / "t10k-labels-idx1-ubyte").read_bytes())
    raw[100] = (raw[100] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="checksum"):
        mnist.load_split(tmp_path, "test")


def test_corrupted_gzip_names_the_file(tmp_path: Path, data_dir: Path) -> None:
    for stem in mnist.FILES:
        shutil.copy(data_dir / f"{stem}.gz", tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: corrupted or truncated"):
        mnist.load_split(tmp_path, "test")


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    assert mnist.locate() == mnist.BUNDLED_DIR
    monkeypatch.setenv(mnist.ENV_VAR, str(data_dir))
    assert mnist.locate() == data_dir
    with pytest.raises(DataError, match="--data-dir"):
        mnist.locate(tmp_path)
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match="EDGE_LSTM_DATA"):
        mnist.locate()


# ---------------------------------------------------------------- the downloader, on loopback
class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    mode = "good"

    def do_GET(self) -> None:
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404)
            return
        if self.mode == "corrupt":
            body = body[:-10] + b"\x00" * 10
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.mode == "drop":
            self.wfile.write(body[: len(body) // 2])  # then close: the client sees a short read
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(data_dir: Path) -> Iterator[tuple[str, type[_Handler]]]:
    class Handler(_Handler):
        files: ClassVar[dict[str, bytes]] = {
            f"{stem}.gz": (data_dir / f"{stem}.gz").read_bytes() for stem in mnist.FILES
        }

    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mnist/", Handler
    httpd.shutdown()
    httpd.server_close()


def test_download_good(tmp_path: Path, server: tuple[str, type[_Handler]]) -> None:
    url, _ = server
    dest = mnist.download_mnist(tmp_path / "cache", mirrors=(url,), timeout_s=10)
    assert len(mnist.load_split(dest, "train")) == 60000
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in mnist.FILES)


@pytest.mark.parametrize("mode", ["corrupt", "drop"])
def test_download_failure_leaves_nothing(tmp_path: Path, server: tuple[str, type[_Handler]], mode: str) -> None:
    url, handler = server
    handler.mode = mode
    with pytest.raises(DownloadError, match="could not download"):
        mnist.download_mnist(tmp_path / "cache", mirrors=(url,), timeout_s=10)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_falls_back_to_next_mirror(tmp_path: Path, server: tuple[str, type[_Handler]]) -> None:
    url, _ = server
    dead = "http://127.0.0.1:9/"  # discard port: connection refused
    dest = mnist.download_mnist(tmp_path / "cache", mirrors=(dead, url), timeout_s=10)
    assert len(list(dest.iterdir())) == 4
