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


def train_vowels(run: Path, *options: str) -> str:
    """`train` on JapaneseVowels (its test file for testing), with `options`; its output."""
    return cli("train", "--data", str(JV_TRAIN), "--test-data", str(JV_TEST), *options, "--out", str(run), "--json")


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A conv-lstm of sequences of any length (JapaneseVowels, 7-26 steps: stride 1)."""
    tmp = tmp_path_factory.mktemp("conv")
    out = train_vowels(tmp / "run", "--arch", "conv-lstm", "--epochs", "3", "--hidden", "24")
    assert "causal conv 64-64 (kernel 8, batch norm) + LSTM 24 on" in out  # JapaneseVowels' 7-26 steps: stride 1
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
        ("--mcu", "the C library (--mcu) is not written for a convolutional front-end yet"),
        ("--tflite-micro", "TFLite Micro (--tflite-micro) is not written for a convolutional front-end yet"),
    ],
)
def test_targets_a_conv_front_end_lacks_are_refused_in_one_line(
    conv_model: dict[str, Any], option: str, says: str
) -> None:
    out = conv_model["tmp"] / "refused"
    extra = [str(out / "lib")] if option == "--mcu" else []
    res = runner.invoke(
        app, ["export", str(out / "x.onnx"), "--checkpoint", str(conv_model["checkpoint"]), option, *extra]
    )
    assert res.exit_code != 0 and says in res.output and "Traceback" not in res.output, res.output
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_a_conv_front_end_streams_as_the_full_sequence_file(conv_model: dict[str, Any]) -> None:
    """export --streaming (verified against PyTorch row by row on the test sequences) and --triton
    (its step model against the file's, row by row); eval of the step file reads the accuracy train
    reported; served, two interleaved streams answer as the runner's full sequences do."""
    from serving import start_server  # type: ignore[import-not-found]

    tmp, checkpoint = conv_model["tmp"], str(conv_model["checkpoint"])
    cli("export", str(tmp / "step.onnx"), "--checkpoint", checkpoint, "--streaming", "--int8", "--fp16")
    cli("export", str(tmp / "t.onnx"), "--checkpoint", checkpoint, "--triton", str(tmp / "repo"))
    assert (tmp / "repo" / "edge_lstm_step" / "1" / "model.onnx").is_file()
    names = [i.name for i in onnx.load(str(tmp / "step.onnx")).graph.input]
    assert names == ["row", "h", "c", "front"]
    report = json.loads(
        cli("eval", str(tmp / "step.onnx"), "--streaming", "--data", str(JV_TEST), "--json").splitlines()[-1]
    )
    assert report["accuracy_after_rows"][-1] == pytest.approx(conv_model["accuracy"])

    interleaved_streams_answer_as_the_full_file(tmp / "m.onnx", start_server(str(tmp / "step.onnx")))


def interleaved_streams_answer_as_the_full_file(full: Path, server: Any) -> None:
    """Two test sequences row by row, interleaved, through a server's step model: each one's last answer
    is the full-sequence runner's."""
    import tritonclient.http as thttp

    from edge_lstm.data import sequences
    from edge_lstm.runtime.classifier import Classifier

    try:  # the server stops whatever fails
        test = sequences.load(JV_TEST, tuple("123456789"))
        local = Classifier(full).logits(test.x[:2], test.lengths[:2])
        http = thttp.InferenceServerClient(server.host)
        for t in range(int(test.lengths[:2].max())):
            for i in (0, 1):
                if t < test.lengths[i]:
                    row = thttp.InferInput("row", [1, 12], "FP32")
                    row.set_data_from_numpy(test.x[i, t : t + 1])
                    answer = http.infer("edge_lstm_step", [row], sequence_id=20 + i, sequence_start=t == 0)
                    if t == test.lengths[i] - 1:
                        np.testing.assert_allclose(answer.as_numpy("logits")[0], local[i], atol=1e-5)
    finally:
        code, _, err = server.stop()
    assert code == 0, err


def test_the_real_triton_streams_a_conv_front_end(conv_model: dict[str, Any]) -> None:
    """serve --triton: Triton's sequence batcher and Python backend carry the `front` state as the others."""
    from serving import start_server
    from triton_helpers import have_triton  # type: ignore[import-not-found]

    if not have_triton():
        pytest.skip("no tritonserver: pip install --no-deps nvidia-pytriton==0.7.0")
    tmp = conv_model["tmp"]
    full, step = tmp / "triton_full.onnx", tmp / "triton" / "step.onnx"
    cli("export", str(full), "--checkpoint", str(conv_model["checkpoint"]), "--no-verify")
    cli("export", str(step), "--checkpoint", str(conv_model["checkpoint"]), "--streaming")
    interleaved_streams_answer_as_the_full_file(full, start_server(str(step), "--triton"))


@pytest.mark.parametrize(
    ("conv", "kernel", "stride", "pool", "layers", "cell", "norm"),
    [
        ((8,), 4, 1, False, 1, "lstm", False),
        ((8, 5), 4, 3, True, 1, "lstm", True),
        ((6, 5, 4), 8, 2, True, 2, "gru", True),
        ((3,), 1, 4, True, 2, "lstm", False),
    ],
)
def test_the_step_model_of_a_front_end_answers_every_prefix_as_pytorch(
    conv: tuple[int, ...], kernel: int, stride: int, pool: bool, layers: int, cell: str, norm: bool
) -> None:
    """Row by row from the zero state (the convolutions' past rows and the pooled sum in `front`; with a
    stride the recurrent layers run at every stride-th row): after each row, the logits of the full
    model on the rows so far (the classifier file's too), and PyTorch's logits_per_step; the packed
    state round-trips. Batch normalisation, with running statistics far from the identity, is folded
    into the convolutions of both files."""
    import onnxruntime as ort

    from edge_lstm.arch import Arch
    from edge_lstm.export.graph_build import classifier_graph, step_graph
    from edge_lstm.training.model import RecurrentClassifier

    torch.manual_seed(0)
    arch = Arch(
        None, 3, ("a", "b", "c"), cell, layers, 16, 8, conv=conv, kernel=kernel, stride=stride, pool=pool, norm=norm
    )
    model = RecurrentClassifier(arch).eval()
    for bn in model.norm or []:
        with torch.no_grad():
            for t in (bn.weight, bn.bias, bn.running_mean):
                t.normal_()
            bn.running_var.uniform_(0.2, 3.0)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    assert not any(n.op_type == "BatchNormalization" for n in classifier_graph(state, arch, fuse=True).graph.node)
    session = ort.InferenceSession(step_graph(state, arch, fuse=True).SerializeToString())
    full = ort.InferenceSession(classifier_graph(state, arch, fuse=True).SerializeToString())
    x = torch.randn(4, 17, 3)
    with torch.no_grad():
        per_step = model.logits_per_step(x).numpy()
        prefixes = np.stack([model(x[:, : t + 1]).numpy() for t in range(17)], 1)
    np.testing.assert_allclose(per_step, prefixes, atol=1e-5)
    packed = np.zeros((4, arch.state_size), np.float32)  # what a server keeps: zeros start a stream
    for t in range(17):
        logits, *after = session.run(
            None, {"row": x[:, t].numpy(), **dict(zip(arch.state_names, arch.unpack_state(packed), strict=True))}
        )
        packed = arch.pack_state(after)
        np.testing.assert_allclose(logits, prefixes[:, t], atol=1e-5)
        lengths = np.full(4, t + 1, np.int32)
        np.testing.assert_allclose(
            full.run(None, {"sequences": x.numpy(), "lengths": lengths})[0], prefixes[:, t], atol=1e-5
        )


def test_the_fp16_step_model_counts_rows_in_float32() -> None:
    """fp16 counts exactly to 2,048 only: the rows seen, the stride's phase and the pooled sum stay
    float32 in the fp16 step model, so a stream past 2,048 rows keeps its stride and its mean."""
    import onnxruntime as ort

    from edge_lstm.arch import Arch
    from edge_lstm.export.graph_build import step_graph
    from edge_lstm.export.variants import convert_fp16
    from edge_lstm.training.model import RecurrentClassifier

    torch.manual_seed(0)
    arch = Arch(None, 3, ("a", "b", "c"), hidden=8, in_units=8, conv=(8,), kernel=3, stride=3, pool=True)
    model = RecurrentClassifier(arch).eval()
    fp32 = step_graph({k: v.detach().numpy() for k, v in model.state_dict().items()}, arch, fuse=True)
    runs = [ort.InferenceSession(m.SerializeToString()) for m in (fp32, convert_fp16(fp32))]
    states = [list(arch.zero_state(1)), list(arch.zero_state(1))]
    x = np.random.default_rng(0).normal(size=(2100, 1, 3)).astype(np.float32)
    for row in x:
        answers = []
        for k, session in enumerate(runs):
            logits, *states[k] = session.run(None, {"row": row, **dict(zip(arch.state_names, states[k], strict=True))})
            answers.append(logits)
    assert states[1][-1][0, 0, 0] == states[0][-1][0, 0, 0] == 2100  # the rows seen
    np.testing.assert_allclose(answers[1], answers[0], atol=2e-3)


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


def test_arch_auto_picks_on_held_out_training_sequences_and_says_so(tmp_path: Path) -> None:
    """Three candidates, each trained on 80% of the training sequences and scored on the other 20%
    (the test file is not read until the chosen one trains on all 270), the pick said with every
    score, recorded in choice.json, and trained; the library refuses an unsettled `auto`."""
    from edge_lstm.errors import ConfigError
    from edge_lstm.training import train
    from edge_lstm.training.choose import CANDIDATES
    from edge_lstm.training.recipes import override, preset_config

    run = tmp_path / "run"
    out = train_vowels(run, "--arch", "auto", "--epochs", "3", "--hidden", "16")
    assert out.count("216 sequences of") == 3 and "testing on 54" in out  # candidates: 80% / 20% of the training set
    choice = json.loads((run / "choice" / "choice.json").read_text())
    picked = f"{choice['arch']} + {choice['augment']}"
    assert set(choice["scores"]) == {f"{a} + {g}" for a, g in CANDIDATES}
    assert choice["scores"][picked] == max(choice["scores"].values())
    assert f"--arch auto picked {picked}: {100 * choice['scores'][picked]:.1f}% of 54 held-out" in out
    result = json.loads(out.splitlines()[-1])
    assert "270 sequences" in out and result["test_accuracy"] > 0.5
    assert ("conv" in result["arch"]) == (choice["arch"] != "lstm")
    config = override(preset_config("sequences"), data=str(JV_TRAIN), arch="auto")
    with pytest.raises(ConfigError, match="settled before training"):
        train(config, tmp_path / "lib")


def test_arch_auto_without_test_data_never_reads_the_test_split(tmp_path: Path) -> None:
    """Without --test-data the final run tests on a stratified fifth of --data: the candidates are
    trained and scored on the other four fifths only."""
    from edge_lstm.data import sequences
    from edge_lstm.training.choose import choose
    from edge_lstm.training.datasets import own_sets
    from edge_lstm.training.recipes import override, preset_config

    config = override(preset_config("sequences"), data=str(JV_TRAIN), arch="auto", epochs=1, hidden=8)
    picked, choice = choose(config, tmp_path, say=lambda line: None)
    training, test = own_sets(config)
    seen = [sequences.load(tmp_path / "choice" / f"{k}.npz", training.classes) for k in ("fit", "held_out")]
    assert choice.n_fit + choice.n_held_out == len(training) == sum(map(len, seen)) == 270 - len(test)

    def content(s: sequences.SequenceSet) -> set[bytes]:
        return {s.x[i, : s.lengths[i]].tobytes() for i in range(len(s))}

    read = content(seen[0]) | content(seen[1])
    assert read == content(training) and not read & content(test)
    assert picked.arch == choice.arch


def test_batch_norm_counts_the_real_steps_of_a_padded_batch() -> None:
    """Without padding, MaskedBatchNorm1d is BatchNorm1d (outputs and running statistics); with it, its
    statistics are those of the real steps alone, whatever the padding holds."""
    from edge_lstm.training.model import MaskedBatchNorm1d

    torch.manual_seed(0)
    masked, plain = MaskedBatchNorm1d(4), torch.nn.BatchNorm1d(4)
    x = torch.randn(3, 4, 10)
    torch.testing.assert_close(masked(x, torch.ones(3, 10, dtype=torch.bool)), plain(x))
    torch.testing.assert_close(masked.running_var, plain.running_var)
    valid = torch.arange(10)[None, :] < torch.tensor([10, 4, 7])[:, None]
    garbage = torch.where(valid[:, None, :], x, torch.full_like(x, 1e3))  # what the padding holds is not read
    y = MaskedBatchNorm1d(4)(garbage, valid)
    real = torch.cat([x[0, :, :10], x[1, :, :4], x[2, :, :7]], 1)  # (4, 21)
    expected = (x[1, :, :4] - real.mean(1)[:, None]) / torch.sqrt(real.var(1, unbiased=False)[:, None] + 1e-5)
    torch.testing.assert_close(y[1, :, :4], expected)


def test_inputs_spanning_decades_are_read_on_a_log_scale_in_pytorch_and_every_file(tmp_path: Path) -> None:
    """Sequences whose peaks span 10^4 (as appliances' currents do) get Arch.log_scale: the model and
    every file read sign(x) log(1 + |x| / scale), export verifies fp32, fp16 (the scale kept float32)
    and the step model against PyTorch, and the C library is refused in one line. Ordinary data
    (JapaneseVowels) gets none."""
    from edge_lstm.data import sequences
    from edge_lstm.training.datasets import log_scales

    assert log_scales(sequences.load(JV_TRAIN)) == ()
    rng = np.random.default_rng(0)
    n, t = 120, 30
    y = np.arange(n) % 3
    amplitude = 10.0 ** rng.uniform(-2, 2, n)  # the class is the shape, at any size
    phase = np.linspace(0, 2 * np.pi, t)[None, :] * (1 + y[:, None])
    x = (amplitude[:, None] * np.sin(phase))[..., None].astype(np.float32)
    data = tmp_path / "currents.npz"
    np.savez(data, x=x, y=y)
    scale = log_scales(sequences.load(data))
    assert len(scale) == 1 and 0 < scale[0] < 1
    out = cli("train", "--data", str(data), "--epochs", "3", "--hidden", "8", "--out", str(tmp_path / "run"))
    assert "log-scaled inputs + LSTM 8" in out
    checkpoint = str(tmp_path / "run" / "model.pt")
    said = cli("export", str(tmp_path / "m.onnx"), "--checkpoint", checkpoint, "--fp16")
    assert said.count("verified") == 2
    cli("export", str(tmp_path / "s.onnx"), "--checkpoint", checkpoint, "--streaming")
    res = runner.invoke(
        app, ["export", str(tmp_path / "c.onnx"), "--checkpoint", checkpoint, "--mcu", str(tmp_path / "c")]
    )
    assert res.exit_code != 0 and "not written for inputs read on a log scale" in res.output


def test_arch_auto_interrupted_says_to_run_the_command_again(tmp_path: Path) -> None:
    """A stop while a candidate trains: the line names the choice, not that candidate's own resume
    (which would finish the candidate alone)."""
    from edge_lstm.errors import TrainingInterrupted
    from edge_lstm.training import SilentReporter
    from edge_lstm.training.choose import choose
    from edge_lstm.training.recipes import override, preset_config

    class StopAtStep20(SilentReporter):
        def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None:
            if step >= 20:
                raise KeyboardInterrupt

    config = override(preset_config("sequences"), data=str(JV_TRAIN), arch="auto", epochs=30, hidden=8, log_every=10)
    with pytest.raises(TrainingInterrupted, match=r"candidate 1 of 3 \(lstm-fcn \+ sensor\).*run the same command"):
        choose(config, tmp_path, reporter=StopAtStep20(), say=lambda line: None)
