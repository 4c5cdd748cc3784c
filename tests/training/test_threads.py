from __future__ import annotations

import pytest
import torch
from torch import nn

from edge_lstm.training import threads
from edge_lstm.training.model import LSTMClassifier
from edge_lstm.training.threads import PROBE_EVERY, PROBE_STEPS, ThreadTuner


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(tuner: ThreadTuner, clock: Clock, steps: int, cost: dict[int, float]) -> None:
    for _ in range(steps):
        started = tuner.start()
        clock.now += cost[torch.get_num_threads()]
        tuner.done(started)


@pytest.fixture()
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)


def test_tuner_follows_the_load(two_cores: None) -> None:
    before = torch.get_num_threads()
    clock = Clock()
    tuner = ThreadTuner(None, adaptive=True, clock=clock)
    try:
        drive(tuner, clock, 3 * PROBE_EVERY, {2: 7.9, 1: 13.7})  # alone: 2 threads win, probes say so
        assert tuner.current == 2 and tuner.switches == 0
        drive(tuner, clock, 4 * PROBE_STEPS, {2: 27.6, 1: 13.7})  # a busy neighbour arrives: switch at once
        assert tuner.current == 1 and tuner.switches == 1
        drive(tuner, clock, PROBE_EVERY + 2 * PROBE_STEPS, {2: 7.9, 1: 13.7})  # it leaves: back at the next probe
        assert tuner.current == 2 and tuner.switches == 2
    finally:
        torch.set_num_threads(before)


def test_fixed_threads_and_fp32_are_never_changed(two_cores: None) -> None:
    before = torch.get_num_threads()
    clock = Clock()
    try:
        for fixed, adaptive in ((1, True), (None, False)):
            tuner = ThreadTuner(fixed, adaptive=adaptive, clock=clock)
            start = tuner.current
            drive(tuner, clock, 2 * PROBE_EVERY, {2: 27.6, 1: 7.0})
            assert tuner.current == start and torch.get_num_threads() == start
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not threads.native_bf16(), reason="bf16 training is used only on CPUs with native bf16")
def test_bf16_steps_do_not_depend_on_the_thread_count() -> None:
    """Why the tuner may change threads on the bf16 path: the weights come out bit-identical."""
    before = torch.get_num_threads()

    def run(n: int) -> list[torch.Tensor]:
        torch.set_num_threads(n)
        torch.manual_seed(0)
        model = LSTMClassifier()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1)
        for _ in range(20):
            x, y = torch.rand(128, 28, 28, generator=g), torch.randint(0, 10, (128,), generator=g)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]

    try:
        assert all(torch.equal(a, b) for a, b in zip(run(1), run(2), strict=True))
    finally:
        torch.set_num_threads(before)


def test_precision_auto() -> None:
    assert threads.resolve_precision("fp32", "cpu") == "fp32"
    assert threads.resolve_precision("auto", "cuda") == "fp32"
    assert threads.resolve_precision("auto", "cpu") == ("bf16" if threads.native_bf16() else "fp32")
