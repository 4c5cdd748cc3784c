"""The model's ONNX graphs, written from its weights: every cell and depth the architecture allows
equals PyTorch (classifier, padded sequences with lengths, the step model row by row, the unrolled
phone-NPU graph), a fixed batch writes each layer's zero state out, and the contract check names
what differs. Tiny models: the graphs are the point."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import ExportError
from edge_lstm.export.graph import check_contract, fix_batch
from edge_lstm.export.graph_build import classifier_graph, step_graph
from edge_lstm.export.mobile import unrolled
from edge_lstm.training.model import RecurrentClassifier

CELLS_AND_LAYERS = [(c, n) for c in ("lstm", "gru") for n in (1, 2, 3)]


def tiny(cell: str, layers: int, steps: int | None = 7) -> tuple[RecurrentClassifier, dict[str, np.ndarray]]:
    torch.manual_seed(layers)
    arch = Arch(steps=steps, features=5, classes=("a", "b", "c"), cell=cell, layers=layers, hidden=12, in_units=6)
    model = RecurrentClassifier(arch).eval()
    return model, {k: v.detach().numpy() for k, v in model.state_dict().items()}


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


X = np.random.default_rng(0).random((4, 7, 5), dtype=np.float32)
LENGTHS = np.array([7, 3, 5, 1], np.int64)


@pytest.mark.parametrize(("cell", "layers"), CELLS_AND_LAYERS)
@pytest.mark.parametrize("fuse", [True, False])
def test_the_classifier_equals_pytorch(cell: str, layers: int, fuse: bool) -> None:
    model, state = tiny(cell, layers)
    graph = classifier_graph(state, model.arch, fuse)
    check_contract(graph, contract.classifier_spec(model.arch))
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count(model.arch.op) == layers and ("MatMul" in ops) != fuse
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    assert np.abs(session(graph).run(None, {"sequences": X})[0] - expected).max() < 1e-5


@pytest.mark.parametrize(("cell", "layers"), CELLS_AND_LAYERS)
def test_padded_sequences_read_at_their_own_last_step(cell: str, layers: int) -> None:
    model, state = tiny(cell, layers, steps=None)
    graph = classifier_graph(state, model.arch, fuse=True)
    check_contract(graph, contract.classifier_spec(model.arch))
    with torch.no_grad():
        expected = model(torch.from_numpy(X), torch.from_numpy(LENGTHS)).numpy()
    got = session(graph).run(None, {"sequences": X, "lengths": LENGTHS.astype(np.int32)})[0]
    assert np.abs(got - expected).max() < 1e-5


@pytest.mark.parametrize(("cell", "layers"), CELLS_AND_LAYERS)
def test_the_step_model_row_by_row_equals_the_whole_sequence(cell: str, layers: int) -> None:
    model, state = tiny(cell, layers)
    arch = model.arch
    graph = step_graph(state, arch, fuse=True)
    check_contract(graph, contract.step_spec(arch))
    assert [i.name for i in graph.graph.input] == ["row", *arch.state_names]
    sess = session(graph)
    with torch.no_grad():
        per_step = model.logits_per_step(torch.from_numpy(X)).numpy()
    carried = arch.zero_state(len(X))
    for t in range(X.shape[1]):
        logits, *carried = sess.run(None, {"row": X[:, t], **dict(zip(arch.state_names, carried, strict=True))})
        assert [s.shape for s in carried] == [arch.state_shape(n, len(X)) for n in arch.state_names]
        assert np.abs(logits - per_step[:, t]).max() < 1e-5
    packed = arch.pack_state(carried)  # what a server keeps per stream
    assert packed.shape == (len(X), arch.state_size)
    assert all(np.array_equal(a, b) for a, b in zip(arch.unpack_state(packed), carried, strict=True))


@pytest.mark.parametrize(("cell", "layers"), CELLS_AND_LAYERS)
def test_the_unrolled_phone_npu_graph_equals_pytorch(cell: str, layers: int) -> None:
    model, state = tiny(cell, layers)
    graph = unrolled(state, model.arch, batch=4)
    assert not {n.op_type for n in graph.graph.node} & {"LSTM", "GRU", "Loop", "Scan"}
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    assert np.abs(session(graph).run(None, {"sequences": X})[0] - expected).max() < 1e-5


@pytest.mark.parametrize(("cell", "layers"), [("lstm", 1), ("gru", 2)])
def test_fix_batch_writes_each_layers_zero_state_out(cell: str, layers: int) -> None:
    model, state = tiny(cell, layers)
    fixed = fix_batch(classifier_graph(state, model.arch, fuse=True), 4)
    check_contract(fixed, contract.classifier_spec(model.arch), batch=4)
    slots = 2 if cell == "lstm" else 1
    for node in (n for n in fixed.graph.node if n.op_type == model.arch.op):
        assert all(node.input[4 + k + 1] for k in range(slots))  # initial_h (and initial_c) present
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    assert np.abs(session(fixed).run(None, {"sequences": X})[0] - expected).max() < 1e-5


def test_the_contract_check_names_what_differs() -> None:
    model, state = tiny("lstm", 2)
    graph = classifier_graph(state, model.arch, fuse=True)
    one_layer = Arch(7, 5, ("a", "b", "c"), layers=1, hidden=12, in_units=6)
    with pytest.raises(ExportError, match=r"2 recurrent nodes, expected 1 \(LSTM 12\)"):
        check_contract(graph, contract.classifier_spec(one_layer))
    with pytest.raises(ExportError, match="input 'sequences' has shape"):
        check_contract(graph, contract.classifier_spec(Arch(9, 5, ("a", "b", "c"), layers=2, hidden=12)))
