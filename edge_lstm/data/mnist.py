"""MNIST in its original IDX format: strict parsing, content checksums, locating and downloading.

Where the data comes from, in order: an explicit folder (`--data-dir`), the `EDGE_LSTM_DATA`
environment variable, the copy bundled in the repository (`data/mnist/`), the user cache
(`~/.cache/edge-lstm/mnist`), and finally a checksum-verified download into that cache.
Needs numpy only: the deployment side (eval of .onnx files, predict on IDX files) uses it too.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge_lstm.errors import DataError, DownloadError
from edge_lstm.fileio import atomic_path

Split = Literal["train", "test"]

# SHA-256 of the *decompressed* IDX files: the gzip wrappers differ between mirrors, the content not.
FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
ENV_VAR = "EDGE_LSTM_DATA"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "data" / "mnist"  # the repository's data/mnist/

# IDX type byte -> numpy dtype (big-endian where it matters). MNIST only uses 0x08 (ubyte).
_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class MnistSplit:
    images: np.ndarray  # (N, 28, 28) uint8, 0..255
    labels: np.ndarray  # (N,) uint8, 0..9

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it is gzip (by magic bytes, not by name)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupted or truncated gzip data ({e})") from None
    return raw


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, validating magic, dimensions and exact size."""
    if len(data) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number {data[:4].hex()})")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX data type 0x{type_code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{name}: {what}: header says {dims} ({expected} bytes), file has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def load_idx(path: Path) -> np.ndarray:
    return parse_idx(read_bytes(path), str(path))


def validate_pair(images: np.ndarray, labels: np.ndarray, name: str) -> MnistSplit:
    """Check that an image/label pair really is MNIST-shaped and consistent."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{name}: images must be uint8 (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{name}: labels must be uint8 (N,), got {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{name}: {images.shape[0]} images but {labels.shape[0]} labels: the files do not match")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{name}: label {int(labels.max())} out of range 0..9")
    return MnistSplit(images=images, labels=labels)


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _has_all(folder: Path) -> bool:
    return all(_find_file(folder, stem) is not None for stem in FILES)


def load_split(folder: Path, split: Split, verify: bool = True) -> MnistSplit:
    """Load one split from `folder`, checking content against the known SHA-256 when `verify`."""
    arrays = []
    for stem in SPLIT_FILES[split]:
        path = _find_file(folder, stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem}(.gz); point --data-dir at a folder with the four MNIST files")
        data = read_bytes(path)
        if verify and hashlib.sha256(data).hexdigest() != FILES[stem]:
            raise DataError(f"{path}: content does not match the MNIST checksum (corrupted or modified file)")
        arrays.append(parse_idx(data, str(path)))
    return validate_pair(arrays[0], arrays[1], f"{folder} ({split})")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-lstm" / "mnist"


def locate(data_dir: Path | None = None, download: bool = True) -> Path:
    """Return the folder to read MNIST from, following the documented order."""
    if data_dir is not None:
        if not _has_all(Path(data_dir)):
            raise DataError(f"--data-dir {data_dir}: does not hold the four MNIST IDX files")
        return Path(data_dir)
    env = os.environ.get(ENV_VAR)
    if env:
        if not _has_all(Path(env)):
            raise DataError(f"{ENV_VAR}={env}: does not hold the four MNIST IDX files")
        return Path(env)
    for folder in (BUNDLED_DIR, cache_dir()):
        if _has_all(folder):
            return folder
    if not download:
        raise DataError("MNIST not found; pass --data-dir or set EDGE_LSTM_DATA")
    return download_mnist(cache_dir())


def download_mnist(dest: Path, mirrors: tuple[str, ...] = MIRRORS, timeout_s: float = 30.0) -> Path:
    """Download the four files into `dest`, each verified before it is renamed into place."""
    for stem, digest in FILES.items():
        if _find_file(dest, stem) is not None:
            continue
        errors = []
        for mirror in mirrors:
            try:
                _download_one(mirror + stem + ".gz", dest / f"{stem}.gz", digest, timeout_s)
                break
            except (OSError, http.client.HTTPException, DataError, EOFError, zlib.error) as e:
                errors.append(f"{mirror}: {e}")
        else:
            raise DownloadError(
                f"could not download {stem}.gz from any mirror ({'; '.join(errors)}); "
                "copy the MNIST files by hand and pass --data-dir"
            )
    return dest


def _download_one(url: str, dest: Path, digest: str, timeout_s: float) -> None:
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 16):
                out.write(block)
        content = read_bytes(tmp)
        if hashlib.sha256(content).hexdigest() != digest:
            raise DataError(f"{url}: checksum mismatch")
