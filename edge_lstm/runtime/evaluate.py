"""`edge-lstm eval`: test-set accuracy of a checkpoint (PyTorch) or an .onnx/.ort file (onnxruntime).

Model files run through the runtime (torch-free); a checkpoint is handed to the training stage's
model, imported only then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.data import mnist


@dataclass(frozen=True)
class EvalReport:
    model: str
    backend: str  # "torch" or the onnxruntime provider that ran it
    accuracy: float  # 0..1
    n: int
    correct: int
    per_class: list[float]  # accuracy for digits 0..9

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_from_predictions(model: str, backend: str, predicted: np.ndarray, labels: np.ndarray) -> EvalReport:
    hits = predicted == labels
    per_class = [float(hits[labels == k].mean()) if np.any(labels == k) else float("nan") for k in range(10)]
    return EvalReport(model, backend, float(hits.mean()), int(labels.size), int(hits.sum()), per_class)


def is_onnx_path(path: Path) -> bool:
    return Path(path).suffix.lower() in (".onnx", ".ort")


def evaluate(path: Path, data_dir: Path | None = None, provider: str = "cpu", limit: int | None = None) -> EvalReport:
    test = mnist.load_split(mnist.locate(data_dir), "test")
    images, labels = test.images[:limit], test.labels[:limit]
    if is_onnx_path(path):
        from edge_lstm.runtime.classifier import Classifier

        clf = Classifier(path, provider=provider)
        predicted = clf.predict_labels(images)
        return report_from_predictions(str(path), clf.provider, predicted, labels)
    return _evaluate_checkpoint(path, images, labels)


def _evaluate_checkpoint(path: Path, images: np.ndarray, labels: np.ndarray) -> EvalReport:
    from edge_lstm.training.checkpoint import load_model
    from edge_lstm.training.model import logits_of

    model, _ = load_model(path)
    return report_from_predictions(str(path), "torch", logits_of(model, images).argmax(1), labels)


@dataclass(frozen=True)
class StreamingCurve:
    model: str
    backend: str
    n: int
    accuracy_after_rows: list[float]  # index k-1: test accuracy after the first k rows (k = 1..28)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = list(range(1, len(self.accuracy_after_rows) + 1))
        return d

    def rows_needed(self, share_of_final: float = 0.99) -> int:
        """The fewest rows whose accuracy reaches `share_of_final` of the accuracy after all rows."""
        final = self.accuracy_after_rows[-1]
        return next(k + 1 for k, a in enumerate(self.accuracy_after_rows) if a >= share_of_final * final)


def evaluate_streaming(
    path: Path, data_dir: Path | None = None, provider: str = "cpu", limit: int | None = None
) -> StreamingCurve:
    """Anytime prediction: push the test set row by row (all images as parallel streams) and
    measure the accuracy of the logits available after each row."""
    from edge_lstm.runtime.streaming import StreamingClassifier

    test = mnist.load_split(mnist.locate(data_dir), "test")
    images, labels = test.images[:limit], test.labels[:limit]
    stream = StreamingClassifier(path, batch=len(images), provider=provider)
    curve = []
    for t in range(images.shape[1]):
        logits = stream.push(images[:, t, :])  # row t of every image at once
        curve.append(float((logits.argmax(1) == labels).mean()))
    return StreamingCurve(str(path), stream.provider, int(labels.size), curve)


def streaming_report(
    path: Path | None = None,
    plot: Path | None = None,
    data_dir: Path | None = None,
    provider: str = "cpu",
    limit: int | None = None,
) -> tuple[StreamingCurve, Path]:
    """`eval --streaming`: the curve of a step model (default export/step.onnx) and its PNG (default beside it)."""
    from edge_lstm.plots import accuracy_vs_rows

    model = path or contract.DEFAULT_STEP_MODEL
    curve = evaluate_streaming(model, data_dir=data_dir, provider=provider, limit=limit)
    png = plot or model.with_name(f"{model.stem}.accuracy_vs_rows.png")
    accuracy_vs_rows(range(1, contract.N_STEPS + 1), curve.accuracy_after_rows, png)
    return curve, png
