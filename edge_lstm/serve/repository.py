"""A model repository in Triton's layout, and which of its versions to serve.

`REPO/NAME/VERSION/model.onnx` (what `export --triton` writes: other files there, Triton's
config.pbtxt and model.py, are Triton's and are left alone). VERSION is a positive integer; folders
that are not (a `.NAME.tmp` being written, a `latest` link) are not versions. The version policy is
Triton's: the latest N (Triton's default is the latest one), all, or specific versions. Plain Python:
the registry (registry.py) opens the files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_lstm.errors import ConfigError
from edge_lstm.serve.config import NAME

FILE = "model.onnx"


@dataclass(frozen=True)
class VersionPolicy:
    """Triton's version_policy: `latest` (N newest), `all`, or `specific` (these numbers)."""

    kind: str = "latest"
    count: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """'latest', 'latest:N', 'all', 'specific:1,3' (or just '1,3')."""
        kind, _, rest = text.strip().partition(":")
        try:
            if kind == "latest":
                count = int(rest) if rest else 1
                if count >= 1:
                    return cls("latest", count)
            elif kind == "all" and not rest:
                return cls("all")
            else:
                numbers = rest if kind == "specific" else text
                versions = tuple(sorted({int(v) for v in numbers.split(",")}))
                if versions and versions[0] >= 1:
                    return cls("specific", versions=versions)
        except ValueError:
            pass
        raise ConfigError(f"--versions {text!r}: use latest, latest:N, all, or specific:V1,V2 (positive integers)")

    def choose(self, available: Iterable[int]) -> list[int]:
        """The versions to serve, oldest first."""
        have = sorted(available)
        if self.kind == "latest":
            return have[-self.count :]
        if self.kind == "all":
            return have
        return [v for v in have if v in self.versions]

    def __str__(self) -> str:
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, self.versions))
        return f"latest:{self.count}" if self.kind == "latest" else "all"


@dataclass(frozen=True)
class Version:
    path: Path
    stamp: tuple[int, int]  # (size, mtime in ns): a file replaced in place is a new load

    @classmethod
    def of(cls, path: Path) -> Version:
        st = path.stat()
        return cls(path, (st.st_size, st.st_mtime_ns))


def is_repository(path: Path) -> bool:
    """A folder holding at least one NAME/VERSION/model.onnx."""
    return path.is_dir() and any(path.glob(f"*/*/{FILE}"))


def scan(root: Path) -> dict[str, dict[int, Version]]:
    """Every model of the repository and its versions (names sorted). ConfigError if it cannot be read."""
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and NAME.match(p.name) and not p.name.startswith("."))
    except OSError as e:
        raise ConfigError(f"cannot read the model repository {root}: {e.strerror or e}") from None
    out: dict[str, dict[int, Version]] = {}
    for folder in folders:
        versions: dict[int, Version] = {}
        for sub in folder.iterdir() if folder.is_dir() else ():
            if sub.name.isdigit() and int(sub.name) >= 1 and (sub / FILE).is_file():
                try:
                    versions[int(sub.name)] = Version.of(sub / FILE)
                except OSError:
                    continue  # removed while we looked
        if versions:
            out[folder.name] = versions
    return out
