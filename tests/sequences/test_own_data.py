"""A model of one's own sequences end to end, on the two shipped UEA/UCR sets (tiny models: the
path is the point, accuracy is bench/sequences.py's): train --data with .ts files, export (fp32,
int8, streaming, Triton), eval, predict, bench, serve (tritonclient HTTP and gRPC, streams), and the
dynamic time axis (padded batches with lengths vs unpadded runs, ONNX vs PyTorch on many lengths)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.cli import app
from edge_lstm.data import sequences
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.serve.server import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serving import start_server

pytestmark = pytest.mark.slow
runner = CliRunner()
SERIES = Path(__file__).resolve().parents[2] / "data" / "series"
JV_TRAIN, JV_TEST = SERIES / "JapaneseVowels_TRAIN.ts", SERIES / "JapaneseVowels_TEST.ts"
BM_TRAIN, BM_TEST = SERIES / "BasicMotions_TRAIN.ts", SERIES / "BasicMotions_TEST.ts"


def cli(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.fixture(scope="module")
def vowels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """JapaneseVowels (12 features, 7-29 steps, 9 speakers): a model of any length and its files."""
    tmp = tmp_path_factory.mktemp("vowels")
    out = cli(
        "train",
        "--data",
        str(JV_TRAIN),
        "--test-data",
        str(JV_TEST),
        "--epochs",
        "4",
        "--hidden",
        "24",
        "--out",
        str(tmp / "run"),
        "--json",
    )
    assert "270 sequences of 7-26 steps x 12 features, 9 classes" in out and "epoch   1/4  test accuracy" in out
    result = json.loads(out.splitlines()[-1])
    # (int8 of this 4-epoch model is not within the int8 tolerance; bench/sequences.py measures int8)
    cli(
        "export", str(tmp / "model.onnx"), "--checkpoint", result["checkpoint"], "--fp16", "--triton", str(tmp / "repo")
    )
    cli("export", str(tmp / "step.onnx"), "--checkpoint", result["checkpoint"], "--streaming")
    return {
        "checkpoint": Path(result["checkpoint"]),
        "fp32": tmp / "model.onnx",
        "fp16": tmp / "model.fp16.onnx",
        "step": tmp / "step.onnx",
        "repo": tmp / "repo",
        "accuracy": result["test_accuracy"],
    }


def test_the_files_carry_the_data_s_contract(vowels: dict) -> None:
    clf = Classifier(vowels["fp32"])
    assert clf.arch == Arch(steps=None, features=12, classes=tuple("123456789"), hidden=24)
    assert clf.spec.input_names == ("sequences", "lengths")
    info = json.loads(cli("inspect", str(vowels["fp32"]), "--json").splitlines()[-1])
    arch = info["metadata"][contract.META_ARCH]
    assert (json.loads(arch) if isinstance(arch, str) else arch)["features"] == 12
    step = StreamingClassifier(vowels["step"])
    assert step.arch == clf.arch and [s.shape for s in step.state] == [(1, 1, 24), (1, 1, 24)]
    config = (vowels["repo"] / "edge_lstm" / "config.pbtxt").read_text()
    assert 'name: "sequences" data_type: TYPE_FP32 dims: [ -1, 12 ]' in config and "TYPE_INT32" in config


def test_eval_of_checkpoint_and_files_agree(vowels: dict) -> None:
    fp32 = json.loads(cli("eval", str(vowels["fp32"]), "--data", str(JV_TEST), "--json").splitlines()[-1])
    pt = json.loads(cli("eval", str(vowels["checkpoint"]), "--json").splitlines()[-1])  # its recorded test file
    fp16 = json.loads(cli("eval", str(vowels["fp16"]), "--data", str(JV_TEST), "--json").splitlines()[-1])
    assert fp32["n"] == 370 and fp32["accuracy"] == pt["accuracy"] == pytest.approx(vowels["accuracy"])
    assert fp32["class_names"] == list("123456789") and abs(fp16["accuracy"] - fp32["accuracy"]) <= 0.01
    curve = json.loads(
        cli("eval", str(vowels["step"]), "--streaming", "--data", str(JV_TEST), "--json").splitlines()[-1]
    )
    assert len(curve["accuracy_after_rows"]) == 29 and curve["accuracy_after_rows"][-1] == fp32["accuracy"]


def test_padded_batches_with_lengths_equal_unpadded_runs_and_pytorch(vowels: dict) -> None:
    import torch

    from edge_lstm.training.checkpoint import load_model

    clf = Classifier(vowels["fp32"])
    model, _ = load_model(vowels["checkpoint"])
    rng = np.random.default_rng(0)
    lengths = np.array([1, 2, 3, 5, 8, 13, 21, 34, 55, 7], np.int64)
    x = rng.standard_normal((len(lengths), int(lengths.max()), 12)).astype(np.float32)
    padded = clf.logits(x, lengths)
    single = np.stack([clf.logits(x[i : i + 1, :n])[0] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(padded, single, atol=1e-5)
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(padded, torch_logits, atol=1e-4)
    stream = StreamingClassifier(vowels["step"])
    for i in (0, 5, 8):  # the step model, a step at a time, for as long as each sequence is
        stream.reset()
        for t in range(lengths[i]):
            out = stream.push(x[i, t])
        np.testing.assert_allclose(out[0], single[i], atol=1e-5)


def test_predict_takes_csv_npy_and_ts(vowels: dict, tmp_path: Path) -> None:
    test = sequences.load(JV_TEST, tuple("123456789"))
    n = int(test.lengths[0])
    (tmp_path / "one.csv").write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in test.x[0, :n]))
    np.save(tmp_path / "one.npy", test.x[0, :n])
    out = cli("predict", str(vowels["fp32"]), str(tmp_path / "one.csv"), str(tmp_path / "one.npy"), "--json")
    predictions = json.loads(out.splitlines()[-1])["predictions"]
    want = test.classes[int(Classifier(vowels["fp32"]).logits(test.x[:1], test.lengths[:1]).argmax())]
    assert [p["name"] for p in predictions] == [want, want]


def test_bench_times_synthetic_sequences_of_the_file_s_sizes(vowels: dict) -> None:
    out = cli(
        "bench",
        str(vowels["fp32"]),
        "--batch",
        "1",
        "--min-count",
        "30",
        "--min-time",
        "0.1",
        "--rounds",
        "1",
        "--streaming",
        str(vowels["step"]),
        "--json",
    )
    assert "model.onnx" in out and "step.onnx" in out


def test_serve_answers_as_the_runner_over_http_grpc_and_streams(vowels: dict) -> None:
    import tritonclient.grpc as tgrpc
    import tritonclient.http as thttp
    from tritonclient.utils import InferenceServerException

    test = sequences.load(JV_TEST, tuple("123456789"))
    local = Classifier(vowels["fp32"]).logits(test.x[:12], test.lengths[:12])
    grpc_port = free_port("127.0.0.1")
    s = start_server(str(vowels["fp32"]), str(vowels["step"]), "--grpc-port", str(grpc_port))
    try:
        http = thttp.InferenceServerClient(s.host)
        meta = http.get_model_metadata("edge_lstm")
        assert [i["name"] for i in meta["inputs"]] == ["sequences", "lengths"]
        assert meta["inputs"][0]["shape"] == [-1, -1, 12] and meta["outputs"][0]["shape"] == [-1, 9]
        for i in range(12):  # one unpadded sequence per request, no lengths
            x = test.x[i : i + 1, : test.lengths[i]]
            inp = thttp.InferInput("sequences", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            np.testing.assert_allclose(http.infer("edge_lstm", [inp]).as_numpy("logits")[0], local[i], atol=1e-5)
        grpc = tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        x = test.x[:12]
        inp, lengths = tgrpc.InferInput("sequences", list(x.shape), "FP32"), tgrpc.InferInput("lengths", [12], "INT32")
        inp.set_data_from_numpy(x)
        lengths.set_data_from_numpy(test.lengths[:12].astype(np.int32))
        np.testing.assert_allclose(grpc.infer("edge_lstm", [inp, lengths]).as_numpy("logits"), local, atol=1e-5)
        n = int(test.lengths[3])  # a stream of 'samples as they arrive', interleaved with another
        for t in range(n):
            for sid, i in ((11, 3), (12, 4)):
                if t < test.lengths[i]:
                    row = thttp.InferInput("row", [1, 12], "FP32")
                    row.set_data_from_numpy(test.x[i, t : t + 1])
                    answer = http.infer("edge_lstm_step", [row], sequence_id=sid, sequence_start=t == 0)
                    if sid == 11 and t == n - 1:
                        np.testing.assert_allclose(answer.as_numpy("logits")[0], local[3], atol=1e-5)
        url = f"{s.url}/v2/models/edge_lstm"  # bench drives the server with sequences of its sizes
        assert "edge_lstm" in cli(
            "bench", url, "--batch", "1", "--min-count", "20", "--min-time", "0.1", "--rounds", "1"
        )
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as picture:  # the pictures route is for image models
            urllib.request.urlopen(urllib.request.Request(f"{s.url}/predict", data=b"\x89PNG", method="POST"))
        assert picture.value.code == 400 and b"classifies sequences" in picture.value.read()
        wrong = thttp.InferInput("sequences", [1, 5, 7], "FP32")  # 7 features, the model takes 12
        wrong.set_data_from_numpy(np.zeros((1, 5, 7), np.float32))
        with pytest.raises(InferenceServerException, match=r"\(T, 12\)"):
            http.infer("edge_lstm", [wrong])
    finally:
        code, _, err = s.stop()
    assert code == 0, err


def test_a_fixed_length_set_gives_a_fixed_length_file(tmp_path: Path) -> None:
    out = cli(
        "train",
        "--data",
        str(BM_TRAIN),
        "--test-data",
        str(BM_TEST),
        "--epochs",
        "3",
        "--hidden",
        "16",
        "--out",
        str(tmp_path / "run"),
    )
    assert "40 sequences of 100 steps x 6 features, 4 classes (Standing, Running, Walking, Badminton)" in out
    cli("export", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "run" / "model.pt"))
    clf = Classifier(tmp_path / "m.onnx")
    assert clf.spec.input_names == ("sequences",) and clf.arch.steps == 100
    res = runner.invoke(app, ["eval", str(tmp_path / "m.onnx"), "--data", str(JV_TEST)])
    assert res.exit_code != 0 and "not among the training set's classes" in res.output  # another data set


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["train", "--data", str(JV_TRAIN), "--augment", "writing"], "--augment writing is for MNIST"),
        (["train", "--augment", "sensor"], "--augment sensor is for own data"),
        (["train", "--data", str(JV_TRAIN), "--preset", "seed"], "--preset seed is the TensorFlow tutorial's"),
        (["train", "--data", str(JV_TRAIN), "--data-dir", "data/mnist"], "--data-dir is MNIST's folder"),
        (["train", "--test-data", str(JV_TEST)], "--test-data goes with --data"),
        (["train", "--data", str(JV_TRAIN), "--layers", "4"], "layers must be between 1 and 3"),
        (["train", "--cell", "rnn"], "'rnn' is not one of 'lstm', 'gru'"),
        (["train", "--data", "nowhere.ts"], "not found"),
        (["train", "--data", str(JV_TRAIN), "--arch", "auto", "--lr", "0.01"], "--arch auto picks the augmentation"),
        (["train", "--arch", "auto"], "--arch auto is for own sequences"),
    ],
)
def test_bad_training_options_are_one_line(args: list[str], says: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and says in res.output and "Traceback" not in res.output, res.output


def test_a_model_of_own_data_needs_its_test_data_and_refuses_image_variants(vowels: dict, tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", str(vowels["fp32"])])
    assert res.exit_code != 0 and "give its labelled test sequences with --data" in res.output
    res = runner.invoke(
        app, ["export", str(tmp_path / "m.onnx"), "--checkpoint", str(vowels["checkpoint"]), "--mobile"]
    )
    assert res.exit_code != 0 and "needs a fixed number of steps" in res.output


def test_eval_on_a_device_takes_the_test_sequences_there(vowels: dict) -> None:
    out = cli("eval", str(vowels["fp32"]), "--data", str(JV_TEST), "--on", "local", "--json")
    report = json.loads(out.splitlines()[-1])
    assert report["n"] == 370 and report["same_class"] == 370
    assert report["accuracy_there"] == report["accuracy_here"] == pytest.approx(vowels["accuracy"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_same_seed_gives_the_same_weights_on_any_thread_count(cell: str, tmp_path: Path) -> None:
    from edge_lstm.training import checkpoint, override, preset_config, train

    given = dict(data=str(JV_TRAIN), test_data=str(JV_TEST), epochs=2, hidden=16, seed=5, cell=cell, layers=2, shards=2)
    config = override(preset_config("sequences"), **given)
    a = train(override(config, threads=1), tmp_path / "a")
    b = train(override(config, threads=2), tmp_path / "b")
    sa, sb = (checkpoint.load(r.checkpoint) for r in (a, b))
    for (name, x), y in zip(sa["state_dict"].items(), sb["state_dict"].values(), strict=True):
        assert torch_equal(x, y), name
    arch = checkpoint.arch(sa)
    assert (arch.steps, arch.features, arch.cell, arch.layers) == (None, 12, cell, 2)


def torch_equal(x: object, y: object) -> bool:
    import torch

    return bool(torch.equal(x, y))  # type: ignore[arg-type]


def test_training_length_follows_the_data() -> None:
    import torch

    from edge_lstm.arch import Arch
    from edge_lstm.training import TrainConfig, preset_config
    from edge_lstm.training.datasets import TrainingData
    from edge_lstm.training.recipes import MAX_STEPS, MIN_STEPS
    from edge_lstm.training.setup import epochs_for

    def of(n: int, steps: int) -> TrainingData:
        x, y = torch.zeros(n, steps, 1), torch.arange(n) % 2
        return TrainingData(x, y, None, x, y, None, Arch(steps, 1, ("a", "b")))

    config = preset_config("sequences")
    assert epochs_for(config, of(270, 15))[0] == -(-MAX_STEPS // 9)  # short: the most steps (9 batches a pass)
    assert epochs_for(config, of(50, 250))[0] == 1500 // 2  # 12 M time steps / (32 x 250), 2 batches a pass
    assert epochs_for(config, of(1000, 500))[0] == -(-750 // 32)  # 1,000 x 500: 750 steps, 24 passes
    assert epochs_for(config, of(100, 1460))[0] == -(-MIN_STEPS // 4)  # long: the fewest steps
    assert epochs_for(TrainConfig(**{**config.to_dict(), "epochs": 3}), of(100, 1460)) == (3, 3 * 4)
