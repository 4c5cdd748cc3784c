"""The sequences recipe's parts: sensor augmentation, class weights, the convolutional front-end
(`--arch conv-lstm`) through training, export and its refusals (the training length is in
test_own_data.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.training.sensor_augment import sensor_augment
from edge_lstm.training.setup import class_weights

runner = CliRunner()


def cli(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.linspace(0, 6.28, 40)
    x = torch.stack([torch.sin(t * k) for k in (1, 2, 3)], -1)[None].repeat(64, 1, 1)
    lengths = torch.tensor([40, 25, 7, 1] * 16)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    return x, lengths


def test_sensor_augment_keeps_the_padding_and_is_drawn_from_the_batch_s_generator() -> None:
    x, lengths = padded_batch()
    a = sensor_augment(x, lengths, torch.Generator().manual_seed(7), noise=0.3)
    b = sensor_augment(x, lengths, torch.Generator().manual_seed(7), noise=0.3)
    c = sensor_augment(x, lengths, torch.Generator().manual_seed(8), noise=0.3)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    for i, n in enumerate(lengths):
        assert not a[i, n:].any()  # steps past a sequence's length stay padding
        assert a[i, :n].abs().sum() > 0


def test_sensor_augment_changes_shape_not_identity() -> None:
    """Without noise, half the sequences are warped in time and half in magnitude: every change is
    small beside a slow signal (one period of a sine stays near it), and some sequences are left as they were."""
    x, lengths = padded_batch()
    y = sensor_augment(x, lengths, torch.Generator().manual_seed(0), noise=0.0)
    full = lengths == 40
    diff = (y[full] - x[full]).abs().amax((1, 2))
    assert (diff == 0).any() and (diff > 0.01).any()
    slow = (y[full][..., 0] - x[full][..., 0]).abs().amax(1)
    assert float(slow.max()) < 1.0  # the sine's range is 2
    with_noise = sensor_augment(x, None, torch.Generator().manual_seed(0), noise=0.3)
    assert float((with_noise - x).std()) == pytest.approx(0.3, rel=0.3)


def test_class_weights_balance_a_rare_class() -> None:
    y = torch.tensor([0] * 90 + [1] * 10)
    w = class_weights(y, 3)  # class 2 never seen in training
    assert w.tolist() == pytest.approx([100 / (3 * 90), 100 / (3 * 10), 0.0])
    assert class_weights(torch.tensor([0, 1, 0, 1]), 2).tolist() == [1.0, 1.0]  # balanced: unchanged


SERIES = Path(__file__).resolve().parents[2] / "data" / "series"
JV_TRAIN, JV_TEST = SERIES / "JapaneseVowels_TRAIN.ts", SERIES / "JapaneseVowels_TEST.ts"


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A conv-lstm of sequences of any length (JapaneseVowels, 7-26 steps: stride 1)."""
    tmp = tmp_path_factory.mktemp("conv")
    out = cli(
        "train",
        "--data",
        str(JV_TRAIN),
        "--test-data",
        str(JV_TEST),
        "--arch",
        "conv-lstm",
        "--epochs",
        "3",
        "--hidden",
        "24",
        "--out",
        str(tmp / "run"),
        "--json",
    )
    assert "causal conv 64-64 (kernel 8) + LSTM 24 on" in out  # JapaneseVowels' 7-26 steps: stride 1
    result = json.loads(out.splitlines()[-1])
    return {"checkpoint": Path(result["checkpoint"]), "tmp": tmp, "accuracy": result["test_accuracy"]}


def test_a_conv_front_end_exports_to_the_onnx_files_and_runs_as_pytorch(conv_model: dict[str, Any]) -> None:
    """export verifies every file against PyTorch on the test sequences (of 7-26 steps, padded):
    fp32, int8 (ConvInteger and the int8 LSTM), fp16, ORT; eval reads the accuracy train reported."""
    model = conv_model["tmp"] / "m.onnx"
    out = cli("export", str(model), "--checkpoint", str(conv_model["checkpoint"]), "--fp16", "--ort", "--int8")
    scheme = {p.key: p.value for p in onnx.load(str(conv_model["tmp"] / "m.int8.onnx")).metadata_props}
    assert f"(int8 scheme {scheme['edge_lstm.int8_scheme']}" in out  # which layers are int8, in the file and said
    ops = {n.op_type for n in onnx.load(str(model)).graph.node}
    assert {"Pad", "Conv", "Relu", "LSTM"} <= ops
    report = json.loads(cli("eval", str(model), "--data", str(JV_TEST), "--json").splitlines()[-1])
    assert report["accuracy"] == pytest.approx(conv_model["accuracy"])
    for variant in ("m.int8.onnx", "m.fp16.onnx", "m.ort"):
        assert (conv_model["tmp"] / variant).is_file()


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--streaming", "has no step model yet"),
        ("--mcu", "the C library (--mcu) is not written for a convolutional front-end yet"),
        ("--triton", "--triton (its step model) is not written for a convolutional front-end yet"),
    ],
)
def test_targets_a_conv_front_end_lacks_are_refused_in_one_line(
    conv_model: dict[str, Any], option: str, says: str
) -> None:
    out = conv_model["tmp"] / "refused"
    extra = [str(out / "lib")] if option in ("--mcu", "--triton") else []
    res = runner.invoke(
        app, ["export", str(out / "x.onnx"), "--checkpoint", str(conv_model["checkpoint"]), option, *extra]
    )
    assert res.exit_code != 0 and says in res.output and "Traceback" not in res.output, res.output
    assert not out.exists() or not any(out.iterdir())  # nothing written


@pytest.mark.parametrize("pool", [False, True])
def test_a_strided_front_end_reads_each_sequence_to_its_own_end(pool: bool) -> None:
    """Stride 3 over padded sequences of other lengths: the ONNX graph (lengths -> ceil(lengths / 3) for
    the LSTM's sequence_lens, and the pooled channels' mean over each one's own steps) equals PyTorch
    on each sequence alone, unpadded; and a fixed-length file (GlobalAveragePool) equals PyTorch."""
    import onnxruntime as ort

    from edge_lstm.arch import Arch
    from edge_lstm.export.graph_build import classifier_graph
    from edge_lstm.training.model import RecurrentClassifier

    torch.manual_seed(0)
    arch = Arch(steps=None, features=3, classes=("a", "b", "c"), conv=(8, 5), kernel=4, stride=3, hidden=16, pool=pool)
    model = RecurrentClassifier(arch).eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    session = ort.InferenceSession(classifier_graph(state, arch, fuse=True).SerializeToString())
    lengths = np.array([20, 1, 2, 3, 4, 7, 13, 19], np.int32)
    x = np.zeros((len(lengths), 20, 3), np.float32)
    rng = np.random.default_rng(0)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=(n, 3))
    got = session.run(None, {"sequences": x, "lengths": lengths})[0]
    with torch.no_grad():
        alone = [model(torch.from_numpy(x[i : i + 1, :n])).numpy()[0] for i, n in enumerate(lengths)]
        whole = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, np.stack(alone), atol=1e-5)
    fixed = Arch(**{**arch.to_dict(), "steps": 20, "classes": arch.classes, "conv": arch.conv})
    session = ort.InferenceSession(classifier_graph(state, fixed, fuse=False).SerializeToString())
    np.testing.assert_allclose(session.run(None, {"sequences": x})[0], whole, atol=1e-5)


def test_a_strided_front_end_trains_for_the_steps_its_recurrent_layers_run() -> None:
    """The work that sets the training's length counts the recurrent layers' steps: a stride of 4
    runs them over a quarter of the steps, so the same work buys 4x the optimizer steps (up to the most)."""
    from edge_lstm.arch import Arch
    from edge_lstm.training import preset_config
    from edge_lstm.training.datasets import TrainingData
    from edge_lstm.training.recipes import CONV_LR, override
    from edge_lstm.training.setup import epochs_for

    x, y = torch.zeros(100, 1000, 1), torch.arange(100) % 2
    plain = TrainingData(x, y, None, x, y, None, Arch(1000, 1, ("a", "b")))
    strided = TrainingData(x, y, None, x, y, None, Arch(1000, 1, ("a", "b"), conv=(4,), kernel=8, stride=4))
    config = preset_config("sequences")
    assert epochs_for(config, plain)[1] == 4 * 94  # 12 M / (32 x 1,000) = 375 steps: 94 passes of 4 batches
    assert epochs_for(config, strided)[1] == 4 * 375  # / (32 x 250) = 1,500
    assert override(config, arch="lstm-fcn").lr == CONV_LR and override(config, arch="lstm-fcn", lr=0.01).lr == 0.01
    assert override(config, arch="conv-lstm").augment == "sensor" and config.augment == "noise"
    assert override(config, arch="lstm-fcn", augment="none").augment == "none"
    assert override(config, arch="lstm") == config
