"""onnxruntime-web's browser files, from the npm registry at a pinned version (or a folder you give).

Pinned, with the registry's own sha512 integrity, because the page, its tests and the committed
browser benchmark were made with exactly this build; taken from the registry when building (not
committed: 40 MB of WebAssembly) and cached in ~/.cache/edge-lstm/npm. An offline machine can pass
`--ort-web DIR`, a folder holding the same files (e.g. node_modules/onnxruntime-web/dist).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path

from edge_lstm.errors import EdgeLstmError
from edge_lstm.fileio import atomic_write_bytes

VERSION = "1.30.0"
TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
# The wasm build (CPU, SIMD + threads) and the WebGPU build (which also runs the wasm EP).
FILES = (
    "ort.wasm.min.js",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
    "ort.webgpu.min.js",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-lstm" / "npm" / f"onnxruntime-web-{VERSION}"


def _check_integrity(data: bytes) -> None:
    algo, _, want = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise EdgeLstmError(f"onnxruntime-web {VERSION} from the npm registry failed its integrity check")


def fetch(timeout_s: float = 60.0) -> Path:
    """The folder with FILES: the cache, else a verified download of the pinned tarball into it."""
    folder = cache_dir()
    if all((folder / f).is_file() for f in FILES):
        return folder
    try:
        with urllib.request.urlopen(TARBALL, timeout=timeout_s) as response:
            data = response.read()
    except OSError as e:
        raise EdgeLstmError(
            f"cannot download onnxruntime-web {VERSION} from the npm registry ({e}); "
            "pass --ort-web DIR with its dist files instead"
        ) from None
    _check_integrity(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in FILES:
            member = tar.extractfile(f"package/dist/{name}")
            if member is None:
                raise EdgeLstmError(f"onnxruntime-web {VERSION}: {name} missing from the package")
            atomic_write_bytes(folder / name, member.read())
    return folder


def locate(folder: Path | None) -> Path:
    """The user's folder (checked to hold every file), or the pinned download."""
    if folder is None:
        return fetch()
    missing = [f for f in FILES if not (Path(folder) / f).is_file()]
    if missing:
        raise EdgeLstmError(
            f"--ort-web {folder}: missing {', '.join(missing)} (onnxruntime-web {VERSION}'s dist files)"
        )
    return Path(folder)
