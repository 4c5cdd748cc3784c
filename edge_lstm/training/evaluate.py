"""`edge-lstm eval CHECKPOINT`: a checkpoint's test-set accuracy in PyTorch (model files are the
runtime's job: runtime/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

from edge_lstm.accuracy import EvalReport, report_from_predictions
from edge_lstm.data import mnist
from edge_lstm.training.checkpoint import load_model
from edge_lstm.training.model import logits_of


def evaluate_checkpoint(path: Path, data_dir: Path | None = None, limit: int | None = None) -> EvalReport:
    test = mnist.load_split(mnist.locate(data_dir), "test")
    images, labels = test.images[:limit], test.labels[:limit]
    model, _ = load_model(path)
    return report_from_predictions(str(path), "torch", logits_of(model, images).argmax(1), labels)
