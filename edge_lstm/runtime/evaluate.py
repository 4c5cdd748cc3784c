"""`edge-lstm eval MODEL`: test-set accuracy of an .onnx/.ort file through onnxruntime, and the
streaming curve of a step model (checkpoints are training's: training/evaluate.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.accuracy import EvalReport, report_from_predictions
from edge_lstm.data import mnist, sequences
from edge_lstm.errors import ConfigError
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
    data: Path | None = None,
) -> EvalReport:
    """Test-set accuracy of a model file through onnxruntime: MNIST's test set, or for a model of
    own sequences the labelled sequences in `data` (.npz or .ts)."""
    from edge_lstm.runtime.classifier import Classifier

    clf = Classifier(path, session or SessionConfig())
    if clf.arch.image:
        if data is not None:
            raise ConfigError(f"{path} is an MNIST model: it is evaluated on MNIST's test set; drop --data")
        test = mnist.load_split(mnist.locate(data_dir), "test")
        images, labels = test.images[:limit], test.labels[:limit]
        return report_from_predictions(str(path), clf.provider, clf.predict_labels(images), labels, keep_classes)
    seqs = sequences.for_model(data, clf.arch, path, limit)
    predicted = clf.predict_labels(seqs.x, lengths=seqs.lengths)
    names = list(clf.arch.classes)
    return report_from_predictions(str(path), clf.provider, predicted, seqs.labels, keep_classes, names)


@dataclass(frozen=True)
class StreamingCurve:
    model: str
    backend: str
    n: int
    accuracy_after_rows: list[float]  # index k-1: test accuracy after the first k rows (k = 1..28)
    # a model of own sequences: those shorter than k count with their final answer

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = list(range(1, len(self.accuracy_after_rows) + 1))
        return d

    def rows_needed(self, share_of_final: float = 0.99) -> int:
        """The fewest rows whose accuracy reaches `share_of_final` of the accuracy after all rows."""
        final = self.accuracy_after_rows[-1]
        return next(k + 1 for k, a in enumerate(self.accuracy_after_rows) if a >= share_of_final * final)


def evaluate_streaming(
    path: Path,
    session: SessionConfig | None = None,
    data_dir: Path | None = None,
    limit: int | None = None,
    data: Path | None = None,
) -> StreamingCurve:
    """Anytime prediction: push the test set row by row (all images as parallel streams) and
    measure the accuracy of the logits available after each row."""
    from edge_lstm.runtime.streaming import StreamingClassifier

    stream = StreamingClassifier(path, batch=1, config=session or SessionConfig())
    if stream.arch.image:
        test = mnist.load_split(mnist.locate(data_dir), "test")
        x, labels = test.images[:limit], test.labels[:limit]
        lengths = np.full(len(x), x.shape[1])
    else:
        seqs = sequences.for_model(data, stream.arch, path, limit)
        x, labels, lengths = seqs.x, seqs.labels, seqs.lengths
    stream.reset(batch=len(x))
    curve, answer = [], np.full(len(x), -1)
    for t in range(x.shape[1]):
        logits = stream.push(x[:, t, :])  # step t of every sequence at once
        live = lengths > t  # a sequence that ended keeps its final answer
        answer = np.where(live, logits.argmax(1), answer)
        curve.append(float((answer == labels).mean()))
    return StreamingCurve(str(path), stream.provider, int(labels.size), curve)


def streaming_report(
    path: Path | None = None,
    plot: Path | None = None,
    data_dir: Path | None = None,
    session: SessionConfig | None = None,
    limit: int | None = None,
    data: Path | None = None,
) -> tuple[StreamingCurve, Path]:
    """`eval --streaming`: the curve of a step model (default export/step.onnx) and its PNG (default beside it)."""
    from edge_lstm.plots import accuracy_vs_rows

    model = path or contract.DEFAULT_STEP_MODEL
    curve = evaluate_streaming(model, session, data_dir=data_dir, limit=limit, data=data)
    png = plot or model.with_name(f"{model.stem}.accuracy_vs_rows.png")
    accuracy_vs_rows(range(1, len(curve.accuracy_after_rows) + 1), curve.accuracy_after_rows, png)
    return curve, png
