from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from edge_lstm import contract
from edge_lstm.cli import app
from edge_lstm.data import mnist
from edge_lstm.errors import ExportError
from edge_lstm.export import ExportConfig, classifier_graph, export
from edge_lstm.fileio import sha256_file
from edge_lstm.training.checkpoint import load_model
from edge_lstm.training.model import to_float

runner = CliRunner()


def torch_logits(ckpt: Path, images: np.ndarray) -> np.ndarray:
    model, _ = load_model(ckpt)
    with torch.inference_mode():
        return model(to_float(images)).numpy()


def test_contract_of_the_file(exported: dict[str, Path], trained: Path) -> None:
    path = exported["fp32"]
    assert not list(path.parent.glob("*.data")), "external data side file written"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("images", "logits")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 28, 28]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 10]
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    inits = {t.name for t in model.graph.initializer}
    assert len(lstms) == 1 and lstms[0].input[1] in inits and lstms[0].input[2] in inits
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.META_CHECKPOINT_SHA] == sha256_file(trained)
    assert json.loads(meta[contract.META_LABELS]) == [str(d) for d in range(10)]
    assert json.loads(meta[contract.META_TRAIN_CONFIG])["subset"] == 12000
    assert meta[contract.META_FUSED] == "true" and "MatMul" not in {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("batch", [1, 3, 7, 128, 10000])
def test_parity_with_pytorch_at_any_batch(exported: dict[str, Path], trained: Path, batch: int) -> None:
    images = mnist.load_split(mnist.BUNDLED_DIR, "test").images[-batch:]
    sess = ort.InferenceSession(str(exported["fp32"]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": images.astype(np.float32) / 255})[0]
    want = torch_logits(trained, images)
    assert got.shape == (batch, 10)
    assert np.abs(got - want).max() <= 1e-4
    assert np.array_equal(got.argmax(1), want.argmax(1))


def test_fusion_is_exact(trained: Path) -> None:
    model, _ = load_model(trained)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    x = torch.rand(16, 28, 28)
    with torch.inference_mode():
        a = model(x).numpy()
    for fuse in (True, False):
        sess = ort.InferenceSession(classifier_graph(state, model.arch, fuse).SerializeToString())
        assert np.abs(sess.run(None, {"images": x.numpy()})[0] - a).max() < 1e-5


def test_int8_variant(exported: dict[str, Path]) -> None:
    model = onnx.load(str(exported["int8"]))
    assert "DynamicQuantizeLSTM" in {n.op_type for n in model.graph.node}
    assert exported["int8"].stat().st_size < exported["fp32"].stat().st_size / 2
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.META_VARIANT] == "int8"


def test_fp16_variant(exported: dict[str, Path]) -> None:
    model = onnx.load(str(exported["fp16"]))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O kept
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    w = next(t for t in model.graph.initializer if t.name == lstm.input[1])
    assert w.data_type == onnx.TensorProto.FLOAT16


def test_ort_format_runs_with_dynamic_batch(exported: dict[str, Path]) -> None:
    path = exported["ort"]
    assert path.suffix == ".ort" and path.read_bytes()[4:8] == b"ORTM"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in (1, 5):
        assert sess.run(None, {"images": np.zeros((b, 28, 28), np.float32)})[0].shape == (b, 10)


def test_no_fuse_keeps_the_literal_graph(trained: Path, tmp_path: Path) -> None:
    (art,) = export(ExportConfig(output=tmp_path / "literal.onnx", checkpoint=trained, fuse=False))
    assert art.verified and art.agreement == 1.0
    ops = {n.op_type for n in onnx.load(art.path).graph.node}
    assert "MatMul" in ops or "Gemm" in ops


def test_failed_verification_leaves_previous_file(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous model")
    monkeypatch.setitem(contract.TOLERANCES, "fp32", contract.Tolerance(-1.0, 1.0, 0.0))  # nothing can pass
    with pytest.raises(ExportError, match="verification failed"):
        export(ExportConfig(output=out, checkpoint=trained, int8=True))
    assert out.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary or partial files


def _fails_cleanly(args: list[str], fragment: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code != 0
    assert fragment in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.output


def test_opset_is_selectable(trained: Path, tmp_path: Path) -> None:
    (art,) = export(ExportConfig(output=tmp_path / "o18.onnx", checkpoint=trained, opset=18, verify=False))
    model = onnx.load(art.path)
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    sess = ort.InferenceSession(art.path, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"images": np.zeros((2, 28, 28), np.float32)})[0].shape == (2, 10)
