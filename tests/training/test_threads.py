from __future__ import annotations

import pytest

from edge_lstm.training import threads
from edge_lstm.training.threads import PROBE_EVERY, PROBE_STEPS, ThreadTuner


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Workers:
    """Stands in for ShardedStep.set_workers: remembers the count in effect."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, n: int) -> None:
        self.count = n


def drive(tuner: ThreadTuner, clock: Clock, workers: Workers, steps: int, cost: dict[int, float]) -> None:
    for _ in range(steps):
        started = tuner.start()
        clock.now += cost[workers.count]
        tuner.done(started)


@pytest.fixture()
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)


def test_tuner_follows_the_load(two_cores: None) -> None:
    clock, workers = Clock(), Workers()
    tuner = ThreadTuner(None, limit=2, apply=workers, clock=clock)
    assert workers.count == 2
    drive(tuner, clock, workers, 3 * PROBE_EVERY, {2: 7.9, 1: 13.7})  # alone: 2 workers win, probes say so
    assert tuner.current == 2 and tuner.switches == 0 and workers.count == 2
    drive(tuner, clock, workers, 4 * PROBE_STEPS, {2: 27.6, 1: 13.7})  # a busy neighbour arrives: switch at once
    assert tuner.current == 1 and tuner.switches == 1 and workers.count == 1
    drive(tuner, clock, workers, PROBE_EVERY + 2 * PROBE_STEPS, {2: 7.9, 1: 13.7})  # it leaves: back at the next probe
    assert tuner.current == 2 and tuner.switches == 2 and workers.count == 2


def test_fixed_threads_and_one_shard_are_never_changed(two_cores: None) -> None:
    for fixed, limit in ((1, 2), (None, 1)):
        clock, workers = Clock(), Workers()
        tuner = ThreadTuner(fixed, limit=limit, apply=workers, clock=clock)
        start = tuner.current
        drive(tuner, clock, workers, 2 * PROBE_EVERY, {2: 27.6, 1: 7.0})
        assert tuner.current == start == workers.count == 1 and not tuner.adaptive


def test_precision_auto() -> None:
    assert threads.resolve_precision("fp32", "cpu") == "fp32"
    assert threads.resolve_precision("auto", "cuda") == "fp32"
    assert threads.resolve_precision("auto", "cpu") == ("bf16" if threads.native_bf16() else "fp32")
