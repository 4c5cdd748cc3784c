"""The real `tritonserver` (from the nvidia-pytriton wheel, installed with --no-deps; or on PATH).
CI installs it and sets EDGE_LSTM_REQUIRE_TRITON=1: there a missing server fails these tests instead of
skipping them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Server, start_server
from triton_helpers import have_triton


@pytest.fixture(scope="module")
def triton(exported: dict[str, Path], gru2: dict[str, Path]) -> Iterator[Server]:
    """`edge-lstm serve --triton` of the classifier and the step model (and a two-layer GRU's step
    model, as gru_step): a real Triton on loopback ports."""
    if not have_triton():
        pytest.skip("no tritonserver: pip install --no-deps nvidia-pytriton==0.7.0")
    server = start_server(str(exported["fp32"]), str(exported["step"]), f"gru_step={gru2['step']}", "--triton")
    yield server
    server.stop()
