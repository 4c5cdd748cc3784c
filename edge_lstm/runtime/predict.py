"""`edge-lstm predict`: classify picture files, .npy arrays and IDX files with an exported model.

Each file is handled on its own: one that cannot be read is reported and the others go on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.data import sequences
from edge_lstm.errors import EdgeLstmError
from edge_lstm.runtime.classifier import Classifier
from edge_lstm.runtime.preprocess import IMAGE_SUFFIXES, load_inputs


@dataclass
class Prediction:
    source: str  # "digit.png", or "images.npy[3]" for one image of a multi-image file
    label: int | None = None
    name: str | None = None  # the class's name (a model of own data: from its training data)
    probability: float | None = None
    top: list[tuple[int, float]] = field(default_factory=list)  # (class, probability), best first
    # How sure: the best class's probability minus the runner-up's, and the runner-up
    margin: float | None = None
    runner_up: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict_files(clf: Classifier, paths: list[Path], top_k: int = 1, normalize: bool = True) -> list[Prediction]:
    results: list[Prediction] = []
    names = clf.arch.classes
    for path in paths:
        try:
            if clf.arch.image:
                _, probs = clf.predict(load_inputs(path, normalize=normalize))
            else:  # sequences, padded ones with their lengths
                _, probs = clf.predict(*sequences.read_inputs(path))
        except EdgeLstmError as e:
            message = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"  # every error names its file
            results.append(Prediction(source=str(path), error=message))
            continue
        # The model's "no digit" is for pictures people send; arrays (.npy, IDX) are data, answered as /infer does
        below = clf.no_digit_below if clf.arch.image and path.suffix.lower() in IMAGE_SUFFIXES else None
        for i, p in enumerate(probs):
            order = np.argsort(-p, kind="stable")
            source = str(path) if len(probs) == 1 else f"{path}[{i}]"
            if (why := contract.no_digit_reason(int(order[0]), float(p[order[0]]), below)) is not None:
                results.append(Prediction(source=source, error=f"{source}: {why}"))  # the model's own "no digit"
                continue
            top = [(int(k), float(p[k])) for k in order[:top_k]]
            second = int(order[1])
            results.append(
                Prediction(
                    source=source,
                    label=top[0][0],
                    name=names[top[0][0]],
                    probability=top[0][1],
                    top=top,
                    margin=top[0][1] - float(p[second]),
                    runner_up=second,
                )
            )
    return results
