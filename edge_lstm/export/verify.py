"""Every exported file is run in onnxruntime against the PyTorch model before it is kept.

It runs in a plain onnxruntime CPU session (not the runtime's Classifier, a later stage): the file
must stand on its own in the engine users will load it with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.batching import in_fixed_batches
from edge_lstm.data import mnist
from edge_lstm.errors import ExportError
from edge_lstm.training.model import LSTMClassifier, logits_of


@dataclass(frozen=True)
class Reference:
    """PyTorch's answers that every exported file is checked against."""

    probes: dict[int, tuple[np.ndarray, np.ndarray]]  # batch -> (images uint8, logits)
    test_images: np.ndarray  # (N, 28, 28) uint8
    test_labels: np.ndarray
    test_predictions: np.ndarray
    accuracy: float


@dataclass
class Verdict:
    max_abs_diff: dict[str, float]  # batch size -> max |logit diff|
    agreement: float  # share of test images with PyTorch's predicted class
    accuracy: float  # test accuracy through onnxruntime


def reference(model: LSTMClassifier, data_dir: Path | None) -> Reference:
    test = mnist.load_split(mnist.locate(data_dir), "test")
    logits_np = logits_of(model, test.images)
    probes, start = {}, 0
    for b in contract.PROBE_BATCHES:  # distinct real test images for every probe batch
        probes[b] = (test.images[start : start + b], logits_np[start : start + b])
        start += b
    predicted = logits_np.argmax(1)
    return Reference(probes, test.images, test.labels, predicted, float((predicted == test.labels).mean()))


def ort_logits(model_bytes: bytes, streaming: bool, variant: str) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 images (B, 28, 28) -> logits, through a plain onnxruntime CPU session of the file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1  # verification runs beside nothing else; 1 thread is exact and enough
    try:
        session = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own error types
        raise ExportError(
            f"{variant}: onnxruntime cannot load the exported file ({str(e).splitlines()[0][:200]})"
        ) from None
    # A fixed-batch file takes exactly that many images: pad the last chunk and drop the padding.
    fixed = session.get_inputs()[0].shape[0]

    def full(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([contract.OUTPUT], {contract.INPUT: x})[0])

    def rows(x: np.ndarray) -> np.ndarray:
        h = np.zeros(contract.STEP.shape("h", len(x)), np.float32)
        c = np.zeros_like(h)
        logits: Any = None
        for t in range(x.shape[1]):  # one row (time step) at a time, the state carried over
            logits, h, c = session.run(None, {"row": x[:, t, :], "h": h, "c": c})
        return np.asarray(logits)

    run = rows if streaming else full

    def logits(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32) / 255
        return in_fixed_batches(run, x, fixed) if isinstance(fixed, int) else run(x)

    return logits


def compare(run: Callable[[np.ndarray], np.ndarray], ref: Reference, tol: contract.Tolerance, variant: str) -> Verdict:
    """Logits of uint8 images from any engine against PyTorch's; ExportError listing every mismatch."""
    problems = []
    diffs: dict[str, float] = {}
    for b, (images, expected) in ref.probes.items():
        got = run(images)
        if got.shape != expected.shape:
            problems.append(f"batch {b}: output shape {got.shape}, expected {expected.shape}")
            continue
        diff = float(np.abs(got - expected).max())
        diffs[str(b)] = diff
        if not diff <= tol.max_abs_logit:  # `not <=` also catches NaN
            problems.append(f"batch {b}: max |logit diff| {diff:.2e} > {tol.max_abs_logit:.0e}")
    predicted = np.concatenate(
        [run(ref.test_images[i : i + 2000]).argmax(1) for i in range(0, len(ref.test_images), 2000)]
    )
    verdict = Verdict(
        diffs, float((predicted == ref.test_predictions).mean()), float((predicted == ref.test_labels).mean())
    )
    if verdict.agreement < tol.min_agreement:
        problems.append(f"predicted class agrees with PyTorch on {100 * verdict.agreement:.2f}% of the test set")
    if 100 * (ref.accuracy - verdict.accuracy) > tol.max_accuracy_drop + 1e-9:
        problems.append(f"test accuracy {100 * verdict.accuracy:.2f}% vs PyTorch {100 * ref.accuracy:.2f}%")
    if problems:
        raise ExportError(f"{variant} verification failed: " + "; ".join(problems))
    return verdict
