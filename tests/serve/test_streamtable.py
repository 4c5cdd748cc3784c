"""The stream table's rules: versions, exact retries, order, limits, expiry (no server needed)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_lstm.serve.streamtable import Held, SequenceError, StreamTable, TableFull


def run(
    table: StreamTable, sid: int, rows: int, start: bool = False, end: bool = False, first: int | None = None
) -> np.ndarray:
    held = table.acquire(sid, start, rows, first)
    if isinstance(held, np.ndarray):
        return held
    answer = np.full((rows, 10), float(held.steps), np.float32)  # stands in for the step model
    table.commit(sid, held, held.state + rows, answer, end)
    return answer


def test_a_retried_request_is_answered_once_and_applied_once() -> None:
    t = StreamTable(60, 10)
    run(t, 1, 3, start=True, first=0)
    first = run(t, 1, 2, first=3)
    again = run(t, 1, 2, first=3)  # the client did not get the answer and sent it again
    assert again is first and t.entries[1].steps == 5
    with pytest.raises(SequenceError, match="starts at row 7; the stream is at row 5"):
        t.acquire(1, False, 1, 7)


def test_a_concurrent_commit_loses() -> None:
    t = StreamTable(60, 10)
    run(t, 1, 1, start=True)
    a, b = t.acquire(1, False, 1), t.acquire(1, False, 1)
    assert isinstance(a, Held) and isinstance(b, Held)
    t.commit(1, a, a.state, np.zeros((1, 10)), False)
    with pytest.raises(SequenceError, match="another request meanwhile"):
        t.commit(1, b, b.state, np.zeros((1, 10)), False)


def test_start_resets_and_end_keeps_the_answer_for_a_retry() -> None:
    t = StreamTable(60, 10)
    run(t, 1, 27, start=True, first=0)
    last = run(t, 1, 1, end=True, first=27)
    assert run(t, 1, 1, first=27) is last  # the retried last request
    with pytest.raises(SequenceError, match="not live"):
        t.acquire(1, False, 1)
    assert t.live == 0
    run(t, 1, 1, start=True)  # the id starts a new image
    assert t.entries[1].steps == 1


def test_limits() -> None:
    t = StreamTable(60, 2)
    run(t, 1, 1, start=True)
    run(t, 2, 1, start=True)
    with pytest.raises(TableFull):
        t.acquire(3, True, 1)
    with pytest.raises(SequenceError, match="an image has 28"):
        t.acquire(1, False, 28)
    with pytest.raises(SequenceError, match="a stream starts at row 0"):
        t.acquire(4, True, 1, 5)


def test_idle_sequences_are_forgotten() -> None:
    t = StreamTable(0.05, 10)
    run(t, 1, 1, start=True)
    time.sleep(0.1)
    with pytest.raises(SequenceError, match="not live"):
        t.acquire(1, False, 1)
    assert t.entries == {}
