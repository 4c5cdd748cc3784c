"""The graph passes on hand-made graphs: what any torch version may write after the LSTM is rebuilt
from the contract (the torch 2.11 head: Gather + MatMul + Add declared [1, batch, 10])."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edge_lstm import contract
from edge_lstm.export.graph import canonical_outputs, check_contract, drop_zero_initial_state, fix_batch

H = 128


def torch211_like() -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    w_out, b_out = rng.normal(size=(10, H)).astype(np.float32), rng.normal(size=10).astype(np.float32)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, (1, 4 * H, 28)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(0, 0.1, (1, 4 * H, H)).astype(np.float32), "R"),
        numpy_helper.from_array(rng.normal(0, 0.1, (1, 8 * H)).astype(np.float32), "B"),
        numpy_helper.from_array(np.array(0, np.int64), "last"),  # a scalar index: Gather drops the axis
        numpy_helper.from_array(w_out.T.copy(), "w_t"),
        numpy_helper.from_array(b_out, "b"),
        numpy_helper.from_array(np.zeros((1, 1, H), np.float32), "zeros"),
        numpy_helper.from_array(np.array([1, 0, 1], np.int64), "state_shape_template"),
    ]
    nodes = [
        helper.make_node("Transpose", ["images"], ["x_t"], perm=[1, 0, 2]),
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Gather", ["shape", "last"], ["batch_dim"], axis=0),
        helper.make_node("Unsqueeze", ["batch_dim", "axes0"], ["batch_1d"]),
        helper.make_node("Concat", ["one", "batch_1d", "hidden"], ["state_shape"], axis=0),
        helper.make_node("Expand", ["zeros", "state_shape"], ["h0"]),
        helper.make_node("LSTM", ["x_t", "W", "R", "B", "", "h0", "h0"], ["Y", "Y_h", "Y_c"], hidden_size=H),
        helper.make_node("Gather", ["Y_h", "last"], ["h_last"], axis=0),
        helper.make_node("MatMul", ["h_last", "w_t"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logits"]),
    ]
    inits += [
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([H], np.int64), "hidden"),
    ]
    graph = helper.make_graph(
        nodes,
        "torch211",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "batch", 10])],  # the stale shape
        inits,
        value_info=[helper.make_tensor_value_info("mm", TensorProto.FLOAT, [1, "batch", 10])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10), w_out, b_out


def logits(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(["logits"], {"images": x})[0]).reshape(len(x), 10)


def test_the_head_is_rebuilt_from_the_contract_whatever_torch_wrote() -> None:
    model, w_out, b_out = torch211_like()
    x = np.random.default_rng(1).random((3, 28, 28), dtype=np.float32)
    before = logits(model, x)
    fixed = drop_zero_initial_state(canonical_outputs(model, contract.CLASSIFIER, w_out, b_out))
    check_contract(fixed, contract.CLASSIFIER)  # [batch, 10] now, one LSTM with constant weights
    ops = [n.op_type for n in fixed.graph.node]
    assert ops == ["Transpose", "LSTM", "Squeeze", "Gemm"]  # the zero state's Shape/Expand went too
    assert not fixed.graph.value_info
    assert np.abs(logits(fixed, x) - before).max() < 1e-5  # the same function


def test_fix_batch_writes_the_zero_state_out() -> None:
    model, w_out, b_out = torch211_like()
    fixed = fix_batch(drop_zero_initial_state(canonical_outputs(model, contract.CLASSIFIER, w_out, b_out)), 2)
    check_contract(fixed, contract.CLASSIFIER, batch=2)
    (lstm,) = [n for n in fixed.graph.node if n.op_type == "LSTM"]
    assert list(lstm.input[4:]) == ["", "initial_h", "initial_c"]
    x = np.random.default_rng(2).random((2, 28, 28), dtype=np.float32)
    assert np.abs(logits(fixed, x) - logits(torch211_like()[0], x)).max() < 1e-5
