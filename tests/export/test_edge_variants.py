"""The files for consumers other than onnxruntime's CPU provider: fixed batch, phone NPUs, TFLite."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.data import MnistSplit
from edge_lstm.errors import ConfigError
from edge_lstm.export import ExportConfig, export
from edge_lstm.runtime import Classifier

runner = CliRunner()


@pytest.fixture(scope="module")
def edge_files(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("edge")
    arts = export(ExportConfig(output=out / "model.onnx", checkpoint=trained, mobile=True))
    arts += export(ExportConfig(output=out / "fixed.onnx", checkpoint=trained, batch=4))
    return {a.variant if "fixed" not in a.path else "fixed": Path(a.path) for a in arts}


def test_fixed_batch_file(edge_files: dict[str, Path], exported: dict[str, Path], test_split: MnistSplit) -> None:
    g = onnx.load(str(edge_files["fixed"])).graph
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 28, 28] and [d.dim_value for d in g.output[0].type.tensor_type.shape.dim] == [4, 10]
    (lstm,) = [n for n in g.node if n.op_type == "LSTM"]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    for name in lstm.input[5:7]:  # the zero state converters need, as constants
        assert inits[name].shape == (1, 4, 128) and not inits[name].any()
    assert not g.value_info  # nothing left that still says `batch`
    x = test_split.images[:10]  # 10 images through a 4-image file: chunked and padded by the runner
    assert np.abs(Classifier(edge_files["fixed"]).logits(x) - Classifier(exported["fp32"]).logits(x)).max() < 1e-5


def mobile_ep_ops() -> dict[str, set[str]]:
    """The operators onnxruntime's own usability checker lists for NNAPI and the two CoreML formats."""
    import onnxruntime.tools.mobile_helpers as helpers

    folder = Path(helpers.__file__).parent
    return {f.stem: set(re.findall(r"ai\.onnx:(\w+)", f.read_text())) for f in folder.glob("*_supported_*ops.md")}


def test_mobile_graph_uses_only_operators_every_phone_npu_takes(edge_files: dict[str, Path]) -> None:
    model = onnx.load(str(edge_files["mobile"]))
    ops = {n.op_type for n in model.graph.node}
    assert "LSTM" not in ops and ops <= {"Split", "Reshape", "Concat", "Gemm", "Sigmoid", "Tanh", "Mul", "Add"}
    lists = mobile_ep_ops()
    assert len(lists) == 3
    for ep, supported in lists.items():
        assert ops <= supported, (ep, ops - supported)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 28, 28]
    gemm_weights = {n.input[1] for n in model.graph.node if n.op_type == "Gemm"}
    assert gemm_weights <= {t.name for t in model.graph.initializer}  # constant B, as the EPs require
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["edge_lstm.variant"] == "mobile" and meta["edge_lstm.kind"] == "classifier"


def test_mobile_int8_is_qdq_and_close_to_fp32(trained: Path, tmp_path: Path) -> None:
    arts = {a.variant: a for a in export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=trained, mobile=True))}
    q = onnx.load(arts["mobile-int8"].path)
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and ops - {
        "QuantizeLinear",
        "DequantizeLinear",
    } <= mobile_ep_ops()["nnapi_supported_ops"]
    assert arts["mobile"].agreement == 1.0 and arts["mobile-int8"].verified
    assert arts["mobile-int8"].accuracy is not None and arts["mobile-int8"].reference_accuracy is not None
    assert arts["mobile-int8"].reference_accuracy - arts["mobile-int8"].accuracy <= 0.005


def test_exported_files_carry_no_stale_shapes(exported: dict[str, Path]) -> None:
    for variant in ("fp32", "int8", "fp16", "step"):
        model = onnx.load(str(exported[variant]))
        assert not model.graph.value_info, variant
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)  # consistent as shipped


def test_impossible_combinations(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="without --streaming"):
        export(ExportConfig(output=tmp_path / "s.onnx", checkpoint=trained, streaming=True, mobile=True))
    with pytest.raises(ConfigError, match="--batch must be between"):
        export(ExportConfig(output=tmp_path / "s.onnx", checkpoint=trained, batch=0))


def test_tflite_without_the_extra_says_what_to_install(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx2tf", None)  # as on an install without the [tflite] extra
    out = tmp_path / "model.onnx"
    res = runner.invoke(app, ["export", str(out), "--checkpoint", str(trained), "--tflite"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    (line,) = res.stderr.strip().splitlines()
    assert "onnx2tf" in line and "[tflite]" in line
    assert not out.exists()  # nothing written when a requested variant cannot be made


def test_native_stderr_is_silenced_then_restored(capfd: pytest.CaptureFixture[str]) -> None:
    # TensorFlow/LiteRT write their start-up chatter to descriptor 2 from C++; export --tflite hides it.
    import os

    from edge_lstm.nativelog import native_output_silenced

    with native_output_silenced():
        os.write(2, b"I0000 Could not find cuda drivers\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "cuda drivers" not in err and "after" in err


def _qnn_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("onnxruntime_qnn") is None:
        return "the onnxruntime-qnn plugin is not installed (pip install -e '.[qnn]'; x86-64 Linux or Windows)"
    return None


def test_qnn_takes_the_phone_npu_files_whole(
    edge_files: dict[str, Path], exported: dict[str, Path], test_split: MnistSplit
) -> None:
    missing = _qnn_missing()
    if missing is not None:
        if os.environ.get("EDGE_LSTM_REQUIRE_QNN") == "1":  # CI installs the plugin: there it must run
            pytest.fail(missing)
        pytest.skip(missing)
    # QNN's HTP backend (an emulator on x86-64 Linux): the unrolled graph runs as one QNN partition; the
    # int8 file too, but for the graph input's Quantize and the output's Dequantize, which stay on the CPU.
    x = test_split.images[:48]
    fp32 = Classifier(exported["fp32"]).predict_labels(x)
    mobile = Classifier(edge_files["mobile"], provider="qnn")
    assert mobile.placement is not None and set(mobile.placement) == {"qnn"}, mobile.placement
    assert (mobile.predict_labels(x) == fp32).all()
    int8 = Classifier(edge_files["mobile-int8"], provider="qnn")
    assert int8.placement is not None
    assert int8.placement.get("cpu", {}) == {"QuantizeLinear": 1, "DequantizeLinear": 1}, int8.placement
    assert (int8.predict_labels(x) == fp32).mean() >= 0.95
    res = runner.invoke(app, ["eval", str(exported["fp32"]), "--provider", "qnn"])  # the LSTM: not on an NPU
    assert res.exit_code == 1 and "export --mobile" in res.output and "Traceback" not in res.output
