"""Atomic file writes: a temporary file in the target folder, then one rename.

An interrupted or failed write never leaves a half-written file and never destroys the
previous file at the destination (os.replace is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_lstm.errors import EdgeLstmError


@contextlib.contextmanager
def atomic_path(dest: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it is renamed onto `dest`.

    On any exception the temporary file is removed and `dest` is left untouched.
    """
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(dest)
        # The writer's pid is in the name, so a later writer can tell a killed writer's leftovers.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=suffix + ".tmp", dir=parent)
    except OSError as e:
        raise EdgeLstmError(f"cannot write to {parent}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _final_mode(dest))  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(dest: Path) -> list[Path]:
    """Delete the temporary files a killed writer of `dest` left beside it (their pid is gone)."""
    removed = []
    for tmp in Path(dest).parent.glob(f".{Path(dest).name}.*.tmp"):
        pid = tmp.name[len(Path(dest).name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _final_mode(dest: Path) -> int:
    try:
        return dest.stat().st_mode & 0o777  # replacing a file keeps its permissions
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: Path, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a file ("not found", "is a folder, not a file"), or None."""
    path = Path(path)
    if path.is_file():
        return None
    return "is a folder, not a file" if path.is_dir() else "not found"


def check_writable_dir(folder: Path, option: str = "--out") -> None:
    """Fail early, before hours of work, if `folder` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe."):
            pass
    except OSError as e:
        raise EdgeLstmError(
            f"output folder {folder} is not writable ({e.strerror or e}); choose another with {option}"
        ) from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def replace_folder(new: Path, dest: Path) -> None:
    """new -> dest (both in one folder); a previous dest is removed only once new is in its place."""
    import shutil

    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
