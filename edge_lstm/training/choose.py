"""`train --data --arch auto`: the architecture and the augmentation picked on the training data alone.

A stratified 20% of the training sequences is held out (the seed's split; the test sequences, a
--test-data file or the share of --data held out for testing, are never read). Each candidate of
CANDIDATES trains on the other 80% with a third of the usual work (or of the given --epochs) and is
scored on the held-out part; the best (ties: the earlier, the cheaper) then trains on all the
training sequences as usual. Why these three: no one of them wins on every set (docs/sequences.md:
lstm-fcn on OSULeaf and ArrowHead with and without augmentation; the plain LSTM ahead of lstm-fcn on
JapaneseVowels and ItalyPowerDemand in bench/results/sequence_suite_lstm*.json), and the held-out
part tells them apart without the test set, mostly (ACSF1's 20 held-out sequences did not:
bench/results/sequence_suite_auto.json). The candidates' runs stay in RUN/choice/ (each one's
model.pt, metrics and curve).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge_lstm.data import sequences
from edge_lstm.errors import TrainingInterrupted
from edge_lstm.fileio import atomic_path, check_writable_dir
from edge_lstm.training.datasets import own_sets
from edge_lstm.training.loop import Reporter, train
from edge_lstm.training.recipes import Augment, TrainConfig, override

# (--arch, --augment) in the order ties go
CANDIDATES: tuple[tuple[str, Augment], ...] = (("lstm-fcn", "sensor"), ("lstm-fcn", "none"), ("lstm", "noise"))
HELD_OUT = 0.2
SHARE = 3  # each candidate gets 1/SHARE of the usual work


@dataclass(frozen=True)
class Choice:
    arch: str
    augment: Augment
    scores: dict[str, float]  # "arch + augment" -> accuracy on the held-out sequences
    n_fit: int
    n_held_out: int

    def line(self) -> str:
        best = f"{self.arch} + {self.augment}"
        others = ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.scores.items() if k != best)
        return (
            f"--arch auto picked {best}: {100 * self.scores[best]:.1f}% of {self.n_held_out} held-out training "
            f"sequences ({others}; each trained on the other {self.n_fit}); now training it on all of them"
        )


def candidate_config(config: TrainConfig, arch: str, augment: Augment) -> TrainConfig:
    """One candidate's settings as `train --arch ARCH --augment AUGMENT` takes them (its preset's learning rate)."""
    return override(config, arch=arch, augment=augment)


def choose(
    config: TrainConfig,
    run_dir: Path,
    device: str = "cpu",
    reporter: Reporter | None = None,
    say: Callable[[str], None] = print,
) -> tuple[TrainConfig, Choice]:
    """(the config to train on all the training data, what was picked and why)."""
    assert config.data is not None and config.arch == "auto"
    folder = Path(run_dir) / "choice"
    check_writable_dir(folder)
    # the training part: without --test-data the final run tests on a split of --data, which stays unread
    training, _ = own_sets(config)
    fit, held_out = sequences.split(training, HELD_OUT, config.seed)
    parts = {}
    for name, part in (("fit", fit), ("held_out", held_out)):
        parts[name] = folder / f"{name}.npz"
        labels = np.asarray(part.classes)[part.labels]  # names: the split keeps every class's name
        with atomic_path(parts[name]) as tmp, open(tmp, "wb") as f:
            np.savez(f, x=part.x, y=labels, lengths=part.lengths)
    epochs = config.epochs if config.epochs is None else max(1, math.ceil(config.epochs / SHARE))
    scores: dict[str, float] = {}
    for k, (arch, augment) in enumerate(CANDIDATES):
        say(f"--arch auto, candidate {k + 1}/{len(CANDIDATES)}: {arch} + {augment}")
        run = replace(
            candidate_config(config, arch, augment),
            data=str(parts["fit"]),
            test_data=str(parts["held_out"]),
            epochs=epochs,
            work=config.work // SHARE,
            subset=None,  # own_sets cut the training part already
            test_subset=None,
        )
        try:
            result = train(run, folder / f"{arch}-{augment}", device=device, reporter=reporter)
        except TrainingInterrupted:  # its resume line would finish that candidate alone, not the choice
            raise TrainingInterrupted(
                f"interrupted while --arch auto trained candidate {k + 1} of {len(CANDIDATES)} ({arch} + {augment}); "
                "nothing was picked: run the same command again (the candidates start over)"
            ) from None
        scores[f"{arch} + {augment}"] = result.test_accuracy
    best = max(range(len(CANDIDATES)), key=lambda k: (scores[" + ".join(CANDIDATES[k])], -k))
    arch, augment = CANDIDATES[best]
    choice = Choice(arch, augment, scores, len(fit), len(held_out))
    with atomic_path(folder / "choice.json") as tmp:
        Path(tmp).write_text(json.dumps({**choice.__dict__, "work_per_candidate": config.work // SHARE}, indent=1))
    return candidate_config(config, arch, augment), choice
