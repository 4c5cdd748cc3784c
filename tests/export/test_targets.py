"""Every export target for every model the architecture allows: MNIST and own fixed-length sequences
(BasicMotions), LSTM and GRU, one and two layers (tiny models, a few seconds of training each). Each
file the table allows is written and verified against PyTorch on the model's test data by its own
engine; each one it does not allow is refused in one line that says why; the step model streams
exactly; a checkpoint of the previous version still loads and exports the same function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.data import sequences
from edge_lstm.errors import ConfigError
from edge_lstm.export import TARGETS, ExportConfig, export
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.training import TrainConfig, override, preset_config, train

REPO = Path(__file__).resolve().parents[2]
BM_TRAIN, BM_TEST = (
    REPO / "data" / "series" / "BasicMotions_TRAIN.ts",
    REPO / "data" / "series" / "BasicMotions_TEST.ts",
)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODELS = [(data, cell, layers) for data in ("mnist", "motions") for cell in ("lstm", "gru") for layers in (1, 2)]
runner = CliRunner()


@pytest.fixture(scope="module", params=MODELS, ids=lambda m: "-".join(map(str, m)))
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """(checkpoint, cell, layers)"""
    data, cell, layers = request.param
    run = tmp_path_factory.mktemp(f"{data}-{cell}-{layers}")
    if data == "mnist":
        config = TrainConfig(
            subset=8000, test_subset=1000, epochs=2, batch_size=64, hidden=48, cell=cell, layers=layers
        )
    else:  # BasicMotions' first 25 steps: an own fixed-length set whose unrolled graph quantizes quickly
        files = []
        for name, path in (("train", BM_TRAIN), ("test", BM_TEST)):
            s = sequences.load(path)
            files.append(run / f"{name}.npz")
            np.savez(files[-1], x=s.x[:, :25], y=np.array(s.classes)[s.labels])
        given = dict(data=str(files[0]), test_data=str(files[1]), epochs=30, hidden=16, cell=cell, layers=layers)
        config = override(preset_config("sequences"), **given)
    return train(config, run).checkpoint, cell, layers


def test_every_target_the_table_allows_is_written_and_verified(model: tuple[Path, str, int], tmp_path: Path) -> None:
    checkpoint, cell, layers = model
    given = dict(
        output=tmp_path / "m.onnx",
        checkpoint=checkpoint,
        fp16=True,
        ort=True,
        triton=tmp_path / "repo",
        mcu=tmp_path / "c",
    )
    arts = export(ExportConfig(**given, int8=cell == "lstm"))  # type: ignore[arg-type]  # GRU's int8: refused, below
    # the phone-NPU files have a fixed batch: 50 here, for a quicker check on 10,000 test images
    arts += export(ExportConfig(output=tmp_path / "b.onnx", checkpoint=checkpoint, mobile=True, batch=50))[1:]
    files = {a.variant: a for a in arts}
    expected = {"fp32", "fp16", "ort", "mobile", "mobile-int8", "triton", "mcu-fp32", "mcu-int8"}
    expected |= {"int8"} if cell == "lstm" else set()
    assert set(files) == expected
    for a in arts:
        assert a.verified, a.variant
        if a.variant != "triton":
            assert a.agreement is not None and a.agreement >= 0.97, a
    graph = onnx.load(files["fp32"].path)
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count(cell.upper()) == layers
    meta = {p.key: p.value for p in graph.metadata_props}
    assert f'"cell": "{cell}", "layers": {layers}' in meta["edge_lstm.arch"]
    assert not {n.op_type for n in onnx.load(files["mobile"].path).graph.node} & {"LSTM", "GRU"}


def test_the_step_model_streams_the_classifier_exactly(model: tuple[Path, str, int], tmp_path: Path) -> None:
    checkpoint = model[0]
    (fp32,) = export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=checkpoint, verify=False))
    (step,) = export(ExportConfig(output=tmp_path / "s.onnx", checkpoint=checkpoint, streaming=True))
    assert step.verified
    clf, stream = Classifier(fp32.path), StreamingClassifier(step.path, batch=3)
    arch = clf.arch
    x = np.random.default_rng(0).random((3, arch.steps or 9, arch.features), dtype=np.float32)
    for t in range(x.shape[1]):
        logits = stream.push(x[:, t])
    assert np.abs(logits - clf.logits(x)).max() < 1e-4
    assert [s.shape for s in stream.state] == [arch.state_shape(n, 3) for n in arch.state_names]


def test_what_the_table_does_not_allow_is_refused_in_one_line(model: tuple[Path, str, int], tmp_path: Path) -> None:
    checkpoint, gru = model[0], model[1] == "gru"
    args = ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(checkpoint)]
    for extra, says in (
        (["--int8"], "no int8 GRU kernel" if gru else None),
        (["--streaming", "--mobile"], "is a full-sequence file; export it without --streaming"),
        (["--streaming", "--triton", str(tmp_path / "r")], "drop --streaming"),
    ):
        res = runner.invoke(app, args + extra)
        if says is None:
            assert res.exit_code == 0, res.output
            continue
        assert res.exit_code == 1 and says in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "m.onnx").exists() or not gru  # a refusal writes nothing


def test_any_length_models_refuse_fixed_length_targets(tmp_path: Path) -> None:
    jv = REPO / "data" / "series"
    given = dict(data=str(jv / "JapaneseVowels_TRAIN.ts"), test_data=str(jv / "JapaneseVowels_TEST.ts"))
    result = train(override(preset_config("sequences"), **given, epochs=1, hidden=8, cell="gru"), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"needs a fixed number of steps.*GRU 8 on own sequences"):
        export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=result.checkpoint, mobile=True))
    (art,) = export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=result.checkpoint))
    assert art.verified and Classifier(art.path).spec.input_names == ("sequences", "lengths")


def test_the_table_names_each_targets_engine_and_tolerance() -> None:
    names = [t.name for t in TARGETS]
    assert names[0] == "fp32" and {"int8", "fp16", "ort", "mobile", "mobile-int8", "tflite", "triton"} <= set(names)
    assert all(t.engine and t.tolerance for t in TARGETS)


@pytest.mark.parametrize("which", ["v1_mnist", "v1_seq"])
def test_a_checkpoint_of_the_previous_version_exports_the_same_function(which: str, tmp_path: Path) -> None:
    """The fixtures were written by the previous version (a one-layer LSTM, weights named `lstm.*`,
    `model_config` instead of `arch`); their logits were computed from that version's export."""
    expected = np.load(FIXTURES / "v1_expected.npz")
    (art,) = export(ExportConfig(output=tmp_path / "m.onnx", checkpoint=FIXTURES / f"{which}.pt", verify=False))
    clf = Classifier(art.path)
    if which == "v1_mnist":
        got, want = clf.logits(expected["x"]), expected["mnist"]
        assert clf.arch.image and clf.arch.hidden == 16
    else:
        got, want = clf.logits(expected["xs"], expected["lengths"]), expected["seq"]
        assert clf.arch.classes == ("a", "b", "c") and clf.arch.steps is None
    assert np.abs(got - want).max() < 1e-6
