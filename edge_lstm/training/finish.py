"""What a finished run writes: `model.pt` (the kept weights, the architecture, the options, the data it
was trained on and its scores), its training curve, and for MNIST the score on real writing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from edge_lstm.training import checkpoint
from edge_lstm.training.datasets import TrainingData, fold_standardisation_
from edge_lstm.training.model import RecurrentClassifier
from edge_lstm.training.recipes import TrainConfig
from edge_lstm.training.resume import FINAL


@dataclass(frozen=True)
class TrainResult:
    test_accuracy: float
    train_seconds: float
    epochs: int  # report points (MNIST: every pass)
    steps: int
    checkpoint: Path
    run_dir: Path
    already_finished: bool = False  # --resume of a finished run: nothing was trained or written
    # accuracy on digits that are not MNIST's (data/writing_set.py): overall, per family; None without the set
    real_writing: dict[str, Any] | None = None
    arch: str = ""  # for people: "LSTM 128"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkpoint"], d["run_dir"] = str(self.checkpoint), str(self.run_dir)
        return d


def real_writing(model: nn.Module) -> dict[str, Any] | None:
    """The model's accuracy on the committed real-writing set (per family, per digit), in fp32 as the
    exported model computes; None where the set is not there (an installed copy without data/)."""
    from edge_lstm.data.writing_set import WRITING_FILE, load_writing_set, score
    from edge_lstm.training.model import logits_of

    if not WRITING_FILE.is_file():
        return None
    ws = load_writing_set(WRITING_FILE)
    return score(ws, logits_of(model, ws.images).argmax(1))


def write_final(
    path: Path,
    config: TrainConfig,
    data: TrainingData,
    model: RecurrentClassifier,
    history: list[dict[str, Any]],
    steps: int,
    seconds: float,
    metrics_path: Path | None = None,
) -> TrainResult:
    """model.pt from the kept weights (own data: the standardisation folded into the input layer)."""
    if data.mean is not None and data.std is not None:
        fold_standardisation_(model, data.mean, data.std)
    writing = real_writing(model) if data.arch.image else None
    test_acc = history[-1]["test_accuracy"]
    result_metrics = {
        "test_accuracy": test_acc,
        "n_test": len(data.y_test),
        "train_seconds": seconds,
        "epochs": len(history),
        "steps": steps,
        "history": history,
        "real_writing": writing,
    }
    payload = {
        "arch": data.arch.to_dict(),
        "train_config": config.to_dict(),
        "state_dict": model.state_dict(),
        "metrics": result_metrics,
    }
    if data.record:
        payload["data"] = data.record
    checkpoint.save(path, payload)
    if metrics_path is not None:
        from edge_lstm.plots import training_curve

        rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        training_curve(rows, path.parent / "training_curve.png")
    return TrainResult(
        test_acc, seconds, len(history), steps, path, path.parent, real_writing=writing, arch=data.arch.describe()
    )


def kept_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The weights a run keeps: the moving average's (its `module.` entries) when it has one."""
    averaged = state.get("averaged") or {}
    kept = {k.removeprefix("module."): v for k, v in averaged.items() if k.startswith("module.")}
    return kept or state["state_dict"]


def finished(state: dict[str, Any], config: TrainConfig, data: TrainingData, run_dir: Path) -> TrainResult:
    """--resume of a run whose every step is done: model.pt is left as it is (its SHA-256 is what
    exported files record); if the run was stopped between its last pass and writing model.pt,
    model.pt is written from that pass's checkpoint."""
    final = run_dir / FINAL
    history = list(state["history"])
    if final.is_file():
        m = checkpoint.load(final).get("metrics", {})
        return TrainResult(
            float(m.get("test_accuracy", history[-1]["test_accuracy"])),
            float(m.get("train_seconds", 0.0)),
            int(m.get("epochs", len(history))),
            int(m.get("steps", state["step"])),
            final,
            run_dir,
            already_finished=True,
            arch=data.arch.describe(),
        )
    model = RecurrentClassifier(data.arch, standardised=data.mean is not None)
    model.load_state_dict(kept_weights(state))
    return write_final(final, config, data, model.eval(), history, int(state["step"]), float(state["train_seconds"]))
