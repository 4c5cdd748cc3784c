"""Shared fixtures. Everything is offline: the bundled MNIST copy, tiny models, loopback servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "mnist"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
