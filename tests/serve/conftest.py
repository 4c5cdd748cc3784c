"""The serving tests' server fixture (the helpers are in serving.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Server, start_server


@pytest.fixture(scope="module")
def server(exported: dict[str, Path]) -> Iterator[Server]:
    s = start_server(str(exported["fp32"]), str(exported["step"]))
    yield s
    s.stop()
