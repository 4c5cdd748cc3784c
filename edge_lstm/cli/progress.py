"""How training progress reaches a person: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


class TrainPrinter:
    """Implements training.Reporter. Log lines go to stdout; the bar (terminal only) to stderr."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.progress: Any = None
        self.task: Any = None
        self.first_epoch = 0

    def __enter__(self) -> TrainPrinter:
        if sys.stderr.isatty() and not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def say(self, text: str) -> None:
        """A line of its own (what training decided), below the bar where there is one."""
        self._line(text)

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        if self.progress is not None:
            self.progress.console.print(text, highlight=False)
        else:
            print(text, flush=True)

    def start(self, total_steps: int, config: Any, resumed_from_epoch: int, policy: str, data: str) -> None:
        self.first_epoch = resumed_from_epoch
        self._line(data)
        what = f"resuming at epoch {resumed_from_epoch + 1}" if resumed_from_epoch else "training"
        self._line(
            f"{what}: preset {config.preset}, {total_steps} steps of {config.batch_size}, "
            f"{config.optimizer} lr {config.lr:g} ({config.schedule}), seed {config.seed}"
        )
        self._line(policy)
        if self.progress is not None:
            self.task = self.progress.add_task("train", total=total_steps)

    def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None:
        self._line(f"step {step:6d}  loss {loss:.4f}  batch accuracy {100 * batch_accuracy:6.2f}%  lr {lr:.2e}")

    def advance(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def epoch(self, epoch: int, epochs: int, test_accuracy: float, seconds: float) -> None:
        # elapsed and an estimate of what is left: runs of own data go on for hundreds of short passes
        done = epoch + 1
        left = seconds / done * (epochs - done) if done < epochs else None
        eta = f", about {left:.0f} s left" if left is not None else ""
        self._line(
            f"epoch {done:3d}/{epochs}  test accuracy {100 * test_accuracy:.2f}%  ({seconds:.1f} s elapsed{eta})"
        )


class PhasePrinter:
    """A long command's phases (bench's warm-ups and rounds, the server search), each with the time
    since the start: a spinner line on a terminal; elsewhere one line on stderr for each phase still
    running after `QUIET_S` (a log or a CI job must show that minutes of PyTorch batch-1024 runs are
    work, not a hang, while a command that fails at once still says so in one line)."""

    QUIET_S = 1.0

    def __init__(self, what: str) -> None:
        import time

        self.what, self.clock, self.t0 = what, time.perf_counter, time.perf_counter()
        self.status: Any = None
        self.timer: Any = None

    def __enter__(self) -> PhasePrinter:
        if sys.stderr.isatty():
            from rich.console import Console

            self.status = Console(stderr=True).status(self.what)
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()
        if self.timer is not None:
            self.timer.cancel()

    def __call__(self, phase: str) -> None:
        import threading

        text = f"{self.what}: {phase} ({self.clock() - self.t0:.0f} s elapsed)"
        if self.status is not None:
            self.status.update(text)
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = threading.Timer(self.QUIET_S, lambda: print(text, file=sys.stderr, flush=True))
        self.timer.daemon = True
        self.timer.start()
