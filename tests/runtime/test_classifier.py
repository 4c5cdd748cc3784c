from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edge_lstm.data import mnist
from edge_lstm.errors import InputError, ProviderError
from edge_lstm.runtime import Classifier, SessionConfig, check_placement, providers, to_input


@pytest.fixture(scope="module")
def clf(exported: dict[str, Path]) -> Classifier:
    return Classifier(exported["fp32"])


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    return mnist.load_split(mnist.BUNDLED_DIR, "test").images


@pytest.mark.parametrize(
    "array, fragment",
    [
        (np.zeros((2, 784), np.float32), "reshape flat images"),
        (np.zeros((2, 28, 28), np.float64), "got float64"),
        (np.full((1, 28, 28), np.nan, np.float32), "NaN"),
        (np.full((1, 28, 28), 255.0, np.float32), "must lie in [0, 1]"),
        (np.zeros((1, 28, 27), np.uint8), "got shape (1, 28, 27)"),
        (np.zeros((0, 28, 28), np.uint8), "empty batch"),
        (np.zeros((28, 28, 3), np.uint8), "expected images of shape"),
    ],
)
def test_input_validation(clf: Classifier, array: np.ndarray, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        clf.predict(array)
    assert fragment in str(e.value)


def test_list_input_rejected(clf: Classifier) -> None:
    with pytest.raises(InputError, match="numpy array"):
        clf.predict([[0] * 28] * 28)  # type: ignore[arg-type]


def test_uint8_and_float_agree(clf: Classifier, test_images: np.ndarray) -> None:
    x = test_images[:16]
    a = clf.logits(x)
    b = clf.logits(x.astype(np.float32) / 255)
    assert np.abs(a - b).max() < 1e-5
    labels, probs = clf.predict(x[0])  # a single (28, 28) image
    assert labels.shape == (1,) and probs.shape == (1, 10) and abs(float(probs.sum()) - 1) < 1e-5


def test_thread_safety(clf: Classifier, test_images: np.ndarray) -> None:
    # Small batches run on the caller's thread; the 300-image ones go through the split pool.
    batches = [test_images[i * 37 : i * 37 + 1 + i % 9] for i in range(64)] + [test_images[:300], test_images[500:800]]
    expected = [clf.logits(b) for b in batches]
    results: dict[int, list[np.ndarray]] = {}

    def worker(k: int) -> None:
        results[k] = [clf.logits(b) for b in batches]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(6):
        for got, want in zip(results[k], expected, strict=True):
            assert np.array_equal(got, want)


def test_cpu_placement_names_the_lstm(exported: dict[str, Path]) -> None:
    placement = Classifier(exported["fp32"]).node_placement()
    assert list(placement) == ["cpu"] and placement["cpu"]["LSTM"] == 1
    int8 = Classifier(exported["int8"], check_placement=True).placement
    assert int8 is not None and int8["cpu"]["DynamicQuantizeLSTM"] == 1


def test_fallback_is_an_error_unless_allowed() -> None:
    placed = {"cuda": {"Transpose": 1}, "cpu": {"LSTM": 1, "Gemm": 1}}
    with pytest.raises(ProviderError, match="recurrent node ran on cpu, not on cuda"):
        check_placement(placed, "cuda", allow_fallback=False)
    check_placement(placed, "cuda", allow_fallback=True)
    check_placement({"cuda": {"LSTM": 1}}, "cuda", allow_fallback=False)


def test_session_options_are_validated(exported: dict[str, Path]) -> None:
    with pytest.raises(ProviderError, match="threads must be >= 1"):
        Classifier(exported["fp32"], SessionConfig(threads=0))
    one = Classifier(exported["fp32"], SessionConfig(threads=1, spinning=False))
    assert one.session.get_session_options().intra_op_num_threads == 1


def test_streaming_model_is_not_a_classifier(exported: dict[str, Path]) -> None:
    from edge_lstm.errors import ModelFileError

    with pytest.raises(ModelFileError, match="StreamingClassifier"):
        Classifier(exported["step"])


def test_to_input_rows() -> None:
    assert to_input(np.zeros(28, np.uint8), rank=2).shape == (1, 28)
    with pytest.raises(InputError, match=r"rows of shape \(28,\) or \(B, 28\)"):
        to_input(np.zeros((2, 27), np.uint8), rank=2)


def test_auto_threading_splits_large_batches(exported: dict[str, Path], test_images: np.ndarray) -> None:
    from edge_lstm.environment import usable_cores
    from edge_lstm.runtime.classifier import _CHUNK as CHUNK

    auto = Classifier(exported["fp32"])
    assert auto.session.get_session_options().intra_op_num_threads == 1
    assert auto.workers == usable_cores() and "auto" in auto.threading()
    one = Classifier(exported["fp32"], threads=1)
    assert one.workers == 1 and one.threading() == "1 intra-op thread(s)"
    x = test_images[: 4 * CHUNK + 3]  # 5 chunks, the last one short
    assert np.allclose(auto.logits(x), one.logits(x), atol=1e-5)
    auto.workers = 1  # a one-core device: the chunks run one after another on the caller's thread
    assert np.allclose(auto.logits(x), one.logits(x), atol=1e-5)
    assert np.array_equal(auto.predict_labels(test_images[:500]), one.predict_labels(test_images[:500]))


def test_io_binding_path_on_cpu(clf: Classifier, test_images: np.ndarray) -> None:
    # The same code the CUDA path runs (OrtValue inputs, outputs bound to the device), on the CPU.
    x = test_images[:5]
    on_device = clf.run_on_device(clf.to_device(x))
    assert np.array_equal(on_device.numpy(), clf.logits(x))


has_cuda = "CUDAExecutionProvider" in providers.available()


@pytest.mark.skipif(not has_cuda, reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_session_places_the_lstm_on_the_gpu(exported: dict[str, Path], test_images: np.ndarray) -> None:
    gpu = Classifier(exported["fp32"], provider="cuda")
    assert gpu.placement is not None and "LSTM" in gpu.placement["cuda"]
    x = test_images[:64]
    cpu = Classifier(exported["fp32"], threads=1).logits(x)
    # cuDNN's LSTM and TF32 matrix products (onnxruntime's CUDA default): 1.2e-3 seen on an H100.
    assert np.abs(gpu.logits(x) - cpu).max() < 5e-3
    assert np.abs(gpu.run_on_device(gpu.to_device(x)).numpy() - cpu).max() < 5e-3
    with pytest.raises(ProviderError, match="recurrent node ran on cpu"):
        Classifier(exported["int8"], provider="cuda")  # DynamicQuantizeLSTM is CPU-only


@pytest.mark.skipif(not has_cuda, reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_graphs_replay_exactly_per_shape(exported: dict[str, Path], test_images: np.ndarray) -> None:
    graphs = Classifier(exported["fp32"], provider="cuda")
    plain = Classifier(exported["fp32"], provider="cuda", cuda_graph=False)
    assert graphs.cuda_graph and graphs.graph_runner is not None and not plain.cuda_graph
    for batch, start in ((1, 0), (1, 1), (8, 2), (1, 10), (8, 20)):  # new data into the same buffers
        x = test_images[start : start + batch]
        assert np.abs(graphs.logits(x) - plain.logits(x)).max() < 1e-5
    assert len(graphs.graph_runner.captured_shapes) == 2  # one graph per batch size
    from edge_lstm.runtime import StreamingClassifier

    stream = StreamingClassifier(exported["step"], batch=3, provider="cuda")
    assert stream.cuda_graph
    for t in range(28):
        logits = stream.push(test_images[:3, t])
    assert np.abs(logits - plain.logits(test_images[:3])).max() < 1e-3
