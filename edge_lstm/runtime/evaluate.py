"""`edge-lstm eval MODEL`: test-set accuracy of an .onnx/.ort file through onnxruntime, and the
streaming curve of a step model (checkpoints are training's: training/evaluate.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_lstm import contract
from edge_lstm.accuracy import EvalReport, report_from_predictions
from edge_lstm.data import mnist
from edge_lstm.runtime.session import SessionConfig


def is_model_file(path: Path) -> bool:
    """An .onnx/.ort file (the runtime's); anything else `eval` takes is a PyTorch checkpoint."""
    return Path(path).suffix.lower() in (".onnx", ".ort")


def evaluate(
    path: Path,
    session: SessionConfig | None = None,
    data_dir: Path | None = None,
    limit: int | None = None,
    keep_classes: bool = False,
) -> EvalReport:
    """Test-set accuracy of a model file through onnxruntime."""
    from edge_lstm.runtime.classifier import Classifier

    test = mnist.load_split(mnist.locate(data_dir), "test")
    images, labels = test.images[:limit], test.labels[:limit]
    clf = Classifier(path, session or SessionConfig())
    return report_from_predictions(str(path), clf.provider, clf.predict_labels(images), labels, keep_classes)


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
    path: Path, session: SessionConfig | None = None, data_dir: Path | None = None, limit: int | None = None
) -> StreamingCurve:
    """Anytime prediction: push the test set row by row (all images as parallel streams) and
    measure the accuracy of the logits available after each row."""
    from edge_lstm.runtime.streaming import StreamingClassifier

    test = mnist.load_split(mnist.locate(data_dir), "test")
    images, labels = test.images[:limit], test.labels[:limit]
    stream = StreamingClassifier(path, batch=len(images), config=session or SessionConfig())
    curve = []
    for t in range(images.shape[1]):
        logits = stream.push(images[:, t, :])  # row t of every image at once
        curve.append(float((logits.argmax(1) == labels).mean()))
    return StreamingCurve(str(path), stream.provider, int(labels.size), curve)


def streaming_report(
    path: Path | None = None,
    plot: Path | None = None,
    data_dir: Path | None = None,
    session: SessionConfig | None = None,
    limit: int | None = None,
) -> tuple[StreamingCurve, Path]:
    """`eval --streaming`: the curve of a step model (default export/step.onnx) and its PNG (default beside it)."""
    from edge_lstm.plots import accuracy_vs_rows

    model = path or contract.DEFAULT_STEP_MODEL
    curve = evaluate_streaming(model, session, data_dir=data_dir, limit=limit)
    png = plot or model.with_name(f"{model.stem}.accuracy_vs_rows.png")
    accuracy_vs_rows(range(1, contract.N_STEPS + 1), curve.accuracy_after_rows, png)
    return curve, png
