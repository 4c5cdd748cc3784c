"""Test-set accuracy reports, whoever computed the predictions (PyTorch for a checkpoint in
training/evaluate.py, onnxruntime for a model file in runtime/evaluate.py). numpy only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EvalReport:
    model: str
    backend: str  # "torch" or the onnxruntime provider that ran it
    accuracy: float  # 0..1
    n: int
    correct: int
    per_class: list[float]  # accuracy for digits 0..9
    classes: list[int] | None = None  # every predicted class (`eval --classes`: compared across devices)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["classes"] is None:
            del d["classes"]
        return d


def report_from_predictions(
    model: str, backend: str, predicted: np.ndarray, labels: np.ndarray, keep_classes: bool = False
) -> EvalReport:
    hits = predicted == labels
    per_class = [float(hits[labels == k].mean()) if np.any(labels == k) else float("nan") for k in range(10)]
    classes = [int(c) for c in predicted] if keep_classes else None
    return EvalReport(model, backend, float(hits.mean()), int(labels.size), int(hits.sum()), per_class, classes)
