"""Training's CPU policy: bf16 where the CPU computes it natively, and a thread count that follows
the machine's load.

Measured on 2 cores (AMD EPYC, torch 2.13, one fp32 training step of batch 128;
bench/results/train_step.json): two intra-op threads take 9.5 ms alone but 19.0 ms beside one busy
process, because every OpenMP barrier waits for a partner the scheduler has parked (28 time steps x
several kernels per step, each ends in a barrier). One thread takes 14.0 ms alone and 13.3 ms beside
a busy process. No OpenMP wait policy fixes both: OMP_WAIT_POLICY=passive makes the alone case 2.3x
slower (21.5 ms). So the
tuner measures: every PROBE_EVERY steps (or at once when steps slow down by half) it times a few
steps at the other thread count and keeps the faster.

Changing the thread count must not change the weights, or a run would depend on what else ran
on the machine. On the bf16 path (oneDNN) the results are bit-identical for 1 and 2 threads
(tests/training/test_threads.py checks it); on the fp32 path they are not (the last bit of a sum
differs), so there the count stays fixed at all usable cores and the tuner is off.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from edge_lstm.environment import usable_cores

PROBE_EVERY = 300  # steps between probes of the other thread count
PROBE_STEPS = 6  # steps timed per probe
SLOWDOWN = 1.5  # probe at once when recent steps take this much longer than the count's best


def native_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic (AVX512-BF16, AMX or Arm's BF16): only then is bf16 faster."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16", "bf16"))


def resolve_precision(precision: str, device: str) -> str:
    """auto -> bf16 on a CPU with native bf16, else fp32 (CUDA trains in fp32)."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cpu" and native_bf16() else "fp32"


class ThreadTuner:
    """Chooses torch's intra-op thread count step by step (see the module docstring)."""

    def __init__(self, threads: int | None, adaptive: bool, clock: Callable[[], float] = time.perf_counter) -> None:
        self.max = usable_cores()
        self.adaptive = adaptive and threads is None and self.max > 1
        self.current = threads or self.max
        self.clock = clock
        self.best: dict[int, float] = {}  # thread count -> best median step time seen
        self.recent: list[float] = []
        self.since_probe = 0
        self.probing: int | None = None  # the count being probed
        self.probe_times: list[float] = []
        self.switches = 0
        torch.set_num_threads(self.current)

    def _other(self) -> int:
        return 1 if self.current != 1 else self.max

    def start(self) -> float:
        return self.clock()

    def done(self, started: float) -> None:
        """Record one step's time and decide the next step's thread count."""
        if not self.adaptive:
            return
        took = self.clock() - started
        if self.probing is not None:
            self.probe_times.append(took)
            if len(self.probe_times) >= PROBE_STEPS:
                self._finish_probe()
            return
        self.recent = [*self.recent[-(PROBE_STEPS - 1) :], took]
        self.since_probe += 1
        if len(self.recent) == PROBE_STEPS:
            median = statistics.median(self.recent)
            self.best[self.current] = min(self.best.get(self.current, median), median)
            # A slowdown must outlast a few probe lengths: one slow step (a page fault, a log line) is noise.
            slowed = median > SLOWDOWN * self.best[self.current] and self.since_probe >= 4 * PROBE_STEPS
            if self.since_probe >= PROBE_EVERY or slowed:
                self.probing, self.probe_times = self._other(), []
                torch.set_num_threads(self.probing)

    def _finish_probe(self) -> None:
        assert self.probing is not None
        probed = statistics.median(self.probe_times)
        current = statistics.median(self.recent)
        if probed < current:
            self.current = self.probing
            self.switches += 1
            self.recent = list(self.probe_times)
        else:
            self.best[self.current] = current  # slower now, but still the faster: compare with now from here
        self.best[self.probing] = min(self.best.get(self.probing, probed), probed)
        self.probing, self.since_probe = None, 0
        torch.set_num_threads(self.current)
