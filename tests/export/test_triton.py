"""`export --triton REPO`: a Triton model repository whose every config.pbtxt parses with Triton's
own schema and fits its model file; the step model in the batch-first state layout Triton needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_lstm.data import MnistSplit
from edge_lstm.errors import ExportError
from edge_lstm.export import ExportConfig, export
from edge_lstm.runtime import StreamingClassifier
from edge_lstm.triton.config import validate_model_dir


@pytest.fixture(scope="module")
def repo(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("triton")
    export(ExportConfig(output=out / "model.onnx", checkpoint=trained, triton=out / "repo"))
    return out / "repo", out / "model.onnx"


def test_the_repository_parses_with_tritons_schema_and_fits_its_files(repo: tuple[Path, Path]) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    root, classifier = repo
    assert sorted(p.name for p in root.iterdir()) == ["edge_lstm", "edge_lstm_step"]
    assert (root / "edge_lstm" / "1" / "model.onnx").read_bytes() == classifier.read_bytes()
    for name in ("edge_lstm", "edge_lstm_step"):
        validate_model_dir(root / name, name)
        cfg = text_format.Parse((root / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size > 0 and cfg.instance_group[0].count == 1
    step = text_format.Parse((root / "edge_lstm_step" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert [s.input_name for s in step.sequence_batching.state] == ["h", "c"]
    assert list(step.sequence_batching.state[0].dims) == [128]


def test_the_triton_step_file_streams_like_the_step_model(
    repo: tuple[Path, Path], exported: dict, test_split: MnistSplit
) -> None:
    """Triton keeps h and c batch-first between requests; fed back like that, the answers are the step model's."""
    import onnxruntime as ort

    root, _ = repo
    session = ort.InferenceSession(
        str(root / "edge_lstm_step" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    x = test_split.images[:5].astype(np.float32) / 255
    h = c = np.zeros((5, 128), np.float32)
    for t in range(28):
        logits, h, c = session.run(None, {"row": x[:, t], "h": h, "c": c})
    # The same checkpoint's step model is not at hand here; the classifier's last answer must match.
    from edge_lstm.runtime import Classifier

    np.testing.assert_allclose(logits, Classifier(root / "edge_lstm" / "1" / "model.onnx").logits(x), atol=1e-4)
    with pytest.raises(Exception, match="streaming-step-triton"):
        StreamingClassifier(root / "edge_lstm_step" / "1" / "model.onnx")  # not edge-lstm's layout: refused


def test_a_config_that_does_not_fit_is_refused(repo: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    root, _ = repo
    broken = tmp_path / "edge_lstm"
    shutil.copytree(root / "edge_lstm", broken)
    text = (broken / "config.pbtxt").read_text().replace("dims: [ 28, 28 ]", "dims: [ 28, 29 ]")
    (broken / "config.pbtxt").write_text(text)
    with pytest.raises(ExportError, match=r"dims \[28, 29\] in the config, \[28, 28\] in the file"):
        validate_model_dir(broken, "edge_lstm")
    (broken / "config.pbtxt").write_text("name: edge_lstm platform: [")
    with pytest.raises(ExportError, match="not a Triton model configuration"):
        validate_model_dir(broken, "edge_lstm")


def test_triton_with_streaming_is_refused(trained: Path, tmp_path: Path) -> None:
    from edge_lstm.errors import ConfigError

    with pytest.raises(ConfigError, match="--triton"):
        export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=trained, streaming=True, triton=tmp_path / "r"))


def test_the_python_backend_repository_holds_the_files_and_their_model_py(trained: Path, tmp_path: Path) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    export(
        ExportConfig(output=tmp_path / "m.onnx", checkpoint=trained, triton=tmp_path / "repo", triton_backend="python")
    )
    root = tmp_path / "repo"
    assert (root / "edge_lstm" / "1" / "model.onnx").read_bytes() == (tmp_path / "m.onnx").read_bytes()
    for name in ("edge_lstm", "edge_lstm_step"):
        validate_model_dir(root / name, name)
        cfg = text_format.Parse((root / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert cfg.backend == "python" and "class TritonPythonModel" in (root / name / "1" / "model.py").read_text()
    step = text_format.Parse((root / "edge_lstm_step" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert step.sequence_batching.HasField("oldest") and [c.name for c in step.sequence_batching.control_input] == [
        "START",
        "END",
        "CORRID",
    ]
    (root / "edge_lstm" / "1" / "model.py").unlink()
    with pytest.raises(ExportError, match=r"without a 1/model\.py"):
        validate_model_dir(root / "edge_lstm", "edge_lstm")


def test_an_unknown_triton_backend_is_refused(trained: Path, tmp_path: Path) -> None:
    from edge_lstm.errors import ConfigError

    with pytest.raises(ConfigError, match="--triton-backend must be onnxruntime or python"):
        export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=trained, triton=tmp_path / "r", triton_backend="tf"))
