"""`edge-lstm eval CHECKPOINT`: a checkpoint's test-set accuracy in PyTorch (model files are the
runtime's job: runtime/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

from edge_lstm.accuracy import EvalReport, report_from_predictions
from edge_lstm.data import mnist
from edge_lstm.data.sequences import for_model
from edge_lstm.errors import ConfigError
from edge_lstm.training.checkpoint import arch as checkpoint_arch
from edge_lstm.training.checkpoint import load_model, recorded_test_data
from edge_lstm.training.model import logits_of, logits_of_sequences


def evaluate_checkpoint(
    path: Path, data_dir: Path | None = None, limit: int | None = None, data: Path | None = None
) -> EvalReport:
    # An explicit MNIST folder is read first (as before sequence models existed): its error, if any,
    # is the one reported
    test = mnist.load_split(mnist.locate(data_dir), "test") if data_dir is not None else None
    model, payload = load_model(path)
    arch = checkpoint_arch(payload, path)
    if not arch.image:  # a model of own sequences: on --data, else the test file it was trained with
        seqs = for_model(data or recorded_test_data(payload), arch, path, limit)
        predicted = logits_of_sequences(model, seqs.x, seqs.lengths).argmax(1)
        return report_from_predictions(str(path), "torch", predicted, seqs.labels, class_names=list(arch.classes))
    if data is not None:
        raise ConfigError(f"{path} is an MNIST model: it is evaluated on MNIST's test set; drop --data")
    test = test or mnist.load_split(mnist.locate(data_dir), "test")
    images, labels = test.images[:limit], test.labels[:limit]
    return report_from_predictions(str(path), "torch", logits_of(model, images).argmax(1), labels)
