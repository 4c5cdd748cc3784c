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
from edge_lstm.data import mnist
from edge_lstm.data.sequences import SequenceSet
from edge_lstm.errors import ExportError
from edge_lstm.training.model import RecurrentClassifier, logits_of, logits_of_sequences

Engine = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (inputs float32 (B, T, F), lengths (B,)) -> logits


@dataclass(frozen=True)
class Reference:
    """PyTorch's answers that every exported file is checked against."""

    probes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # batch -> (inputs, lengths, logits)
    x: np.ndarray  # (N, T, F) float32: the model's inputs (MNIST: pixel / 255)
    lengths: np.ndarray  # (N,) the real steps of each
    labels: np.ndarray
    predictions: np.ndarray
    accuracy: float


@dataclass
class Verdict:
    max_abs_diff: dict[str, float]  # batch size -> max |logit diff|
    agreement: float  # share of test cases with PyTorch's predicted class
    accuracy: float  # test accuracy through onnxruntime


def reference(model: RecurrentClassifier, data_dir: Path | None, sequences: SequenceSet | None = None) -> Reference:
    """PyTorch's logits on MNIST's test set, or on a model's own test sequences."""
    if sequences is None:
        test = mnist.load_split(mnist.locate(data_dir), "test")
        x, labels = test.images.astype(np.float32) / 255, test.labels
        lengths = np.full(len(x), x.shape[1], np.int64)
        logits_np = logits_of(model, test.images)
    else:
        x, lengths, labels = sequences.x, sequences.lengths, sequences.labels
        logits_np = logits_of_sequences(model, sequences.x, sequences.lengths)
    probes, start = {}, 0
    for b in contract.PROBE_BATCHES:  # distinct real test cases for every probe batch (reused if few)
        idx = np.arange(start, start + b) % len(x)
        probes[b] = (x[idx], lengths[idx], logits_np[idx])
        start += b
    predicted = logits_np.argmax(1)
    return Reference(probes, x, lengths, labels, predicted, float((predicted == labels).mean()))


def ort_logits(model_bytes: bytes, streaming: bool, variant: str) -> Engine:
    """(inputs, lengths) -> logits, through a plain onnxruntime CPU session of the file."""
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
    # A fixed-batch file takes exactly that many inputs: pad the last chunk and drop the padding.
    first = session.get_inputs()[0]
    fixed, names = first.shape[0], [i.name for i in session.get_inputs()]

    def full(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        feeds = {first.name: x}
        if "lengths" in names:
            feeds["lengths"] = lengths.astype(np.int32)
        return np.asarray(session.run([contract.OUTPUT], feeds)[0])

    def rows(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        states = session.get_inputs()[1:]  # (layers, batch, hidden) each: LSTM h, c; GRU h
        state = [np.zeros((s.shape[0], len(x), s.shape[2]), np.float32) for s in states]
        out: Any = None
        for t in range(int(lengths.max())):  # one step at a time, the state carried over
            feeds = {"row": np.ascontiguousarray(x[:, t, :]), **{s.name: v for s, v in zip(states, state, strict=True)}}
            logits, *state = session.run(None, feeds)
            out = logits if out is None else np.where((lengths == t + 1)[:, None], logits, out)
        return np.asarray(out)

    run = rows if streaming else full

    def logits(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if not isinstance(fixed, int):
            return run(x, lengths)
        pad = -len(x) % fixed  # zero cases of full length after the last, their answers dropped
        xp = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        lp = np.concatenate([lengths, np.full(pad, x.shape[1], lengths.dtype)])
        return np.concatenate([run(xp[i : i + fixed], lp[i : i + fixed]) for i in range(0, len(xp), fixed)])[: len(x)]

    return logits


def compare(run: Engine, ref: Reference, tol: contract.Tolerance, variant: str) -> Verdict:
    """Logits from any engine against PyTorch's; ExportError listing every mismatch."""
    problems = []
    diffs: dict[str, float] = {}
    for b, (x, lengths, expected) in ref.probes.items():
        got = run(x, lengths)
        if got.shape != expected.shape:
            problems.append(f"batch {b}: output shape {got.shape}, expected {expected.shape}")
            continue
        diff = float(np.abs(got - expected).max())
        diffs[str(b)] = diff
        limit = tol.logit_limit(x.shape[1] if x.ndim == 3 else 1)
        if not diff <= limit:  # `not <=` also catches NaN
            problems.append(f"batch {b}: max |logit diff| {diff:.2e} > {limit:.1e}")
    predicted = np.concatenate(
        [run(ref.x[i : i + 2000], ref.lengths[i : i + 2000]).argmax(1) for i in range(0, len(ref.x), 2000)]
    )
    verdict = Verdict(diffs, float((predicted == ref.predictions).mean()), float((predicted == ref.labels).mean()))
    # The shares are MNIST's (10,000 images); on a small test set of own data one case is already
    # more than they allow, so a lossy variant may differ from PyTorch on one case whatever the size.
    n = len(ref.labels)
    min_agreement = tol.min_agreement if tol.min_agreement == 1 else min(tol.min_agreement, 1 - 1 / n)
    max_drop = tol.max_accuracy_drop if tol.min_agreement == 1 else max(tol.max_accuracy_drop, 100 / n)
    if verdict.agreement < min_agreement - 1e-9:
        problems.append(f"predicted class agrees with PyTorch on {100 * verdict.agreement:.2f}% of the test set")
    if 100 * (ref.accuracy - verdict.accuracy) > max_drop + 1e-9:
        problems.append(f"test accuracy {100 * verdict.accuracy:.2f}% vs PyTorch {100 * ref.accuracy:.2f}%")
    if problems:
        raise ExportError(f"{variant} verification failed: " + "; ".join(problems))
    return verdict
