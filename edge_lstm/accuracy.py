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
    per_class: list[float]  # accuracy for digits 0..9 (a model of own data: for each of its classes)
    classes: list[int] | None = None  # every predicted class (`eval --classes`: compared across devices)
    class_names: list[str] | None = None  # a model of own data: its classes' names (None: digits 0..9)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("classes", "class_names"):
            if d[key] is None:
                del d[key]
        return d

    def per_class_line(self) -> str:
        names = self.class_names or [str(k) for k in range(len(self.per_class))]
        return "  ".join(f"{name}:{100 * a:.1f}%" for name, a in zip(names, self.per_class, strict=True))


def report_from_predictions(
    model: str,
    backend: str,
    predicted: np.ndarray,
    labels: np.ndarray,
    keep_classes: bool = False,
    class_names: list[str] | None = None,
) -> EvalReport:
    hits = predicted == labels
    n = len(class_names) if class_names else 10
    per_class = [float(hits[labels == k].mean()) if np.any(labels == k) else float("nan") for k in range(n)]
    classes = [int(c) for c in predicted] if keep_classes else None
    return EvalReport(
        model, backend, float(hits.mean()), int(labels.size), int(hits.sum()), per_class, classes, class_names
    )
