"""The training/eval CLI through typer's CliRunner: happy paths and every bad-input path."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import torch
from helpers import ctrl_c_reaches_python
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.training import checkpoint

SERIES = Path(__file__).resolve().parents[2] / "data" / "series"

runner = CliRunner()
QUICK = ["--subset", "256", "--test-subset", "100", "--epochs", "1", "--batch-size", "64"]


def invoke(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result: object, fragment: str) -> None:
    """One line on stderr naming the problem, non-zero exit, no traceback."""
    assert result.exit_code != 0, result.output  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert fragment in err, err
    assert "Traceback" not in result.output and len(err.strip().splitlines()) == 1, err  # type: ignore[attr-defined]


def test_help_lists_commands() -> None:
    out = invoke("--help").stdout  # type: ignore[attr-defined]
    for cmd in ("train", "eval", "export", "inspect", "predict", "providers"):
        assert cmd in out


def test_train_json_and_eval(tmp_path: Path) -> None:
    res = invoke("train", *QUICK, "--out", tmp_path, "--json", "--log-every", "1")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    lines = res.stdout.strip().splitlines()  # type: ignore[attr-defined]
    summary = json.loads(lines[-1])
    assert {"test_accuracy", "train_seconds", "epochs", "steps", "checkpoint"} <= summary.keys()
    assert 0 <= summary["test_accuracy"] <= 1 and summary["steps"] == 4
    assert any(line.startswith("step      1  loss") for line in lines)  # plain lines when not on a terminal
    # real writing beside MNIST's test accuracy, family by family, and the whole score in the JSON
    writing = next(line for line in lines if line.startswith("real writing "))
    for family in ("drawn", "photographed", "people", "mnist_pictures"):
        assert f"{family} " in writing
        assert summary["real_writing"]["families"][family]["n"] > 0
    assert summary["real_writing"]["n"] == sum(f["n"] for f in summary["real_writing"]["families"].values())
    ev = invoke("eval", summary["checkpoint"], "--limit", "100", "--json")
    assert ev.exit_code == 0, ev.output  # type: ignore[attr-defined]
    report = json.loads(ev.stdout.strip().splitlines()[-1])  # type: ignore[attr-defined]
    assert report["n"] == 100 and report["accuracy"] == pytest.approx(summary["test_accuracy"], abs=0.2)
    assert len(report["per_class"]) == 10


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--lr", "-0.1"], "learning rate must be > 0"),
        (["--batch-size", "0"], "batch size must be >= 1"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--subset", "0"], "subset must be >= 1"),
        (["--data-dir", "/nonexistent/mnist"], "does not hold the four MNIST IDX files"),
        (["--augment", "sometimes"], "'sometimes' is not one of"),
    ],
)
def test_train_bad_options(tmp_path: Path, args: list[str], fragment: str) -> None:
    assert_clean_failure(invoke("train", *QUICK, "--out", tmp_path, *args), fragment)


def test_train_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_clean_failure(invoke("train", *QUICK, "--out", blocker / "run"), "not writable")


def test_failed_run_keeps_existing_checkpoint(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"previous checkpoint")
    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    path = bad / "train-images-idx3-ubyte.gz"
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:100_000])
    assert_clean_failure(invoke("train", *QUICK, "--out", run, "--data-dir", bad), "train-images-idx3-ubyte.gz")
    assert (run / "model.pt").read_bytes() == b"previous checkpoint"


def test_resume_without_checkpoint(tmp_path: Path) -> None:
    assert_clean_failure(invoke("train", *QUICK, "--out", tmp_path, "--resume"), "last.pt not found")


def test_eval_bad_checkpoints(tmp_path: Path) -> None:
    assert_clean_failure(invoke("eval", tmp_path / "missing.pt"), "not found")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint at all")
    assert_clean_failure(
        invoke("eval", tmp_path / "garbage.pt"),
        "not a checkpoint at all: its first bytes are neither a PyTorch zip archive nor a pickle",
    )
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    assert_clean_failure(invoke("eval", tmp_path / "foreign.pt"), "not an edge-lstm checkpoint")
    other = torch.nn.LSTM(10, 20).state_dict()
    checkpoint.save(
        tmp_path / "other.pt",
        {
            "model_config": {"n_inputs": 28, "n_steps": 28, "n_in_units": 64, "n_hidden": 128, "n_classes": 10},
            "state_dict": other,
        },
    )
    assert_clean_failure(invoke("eval", tmp_path / "other.pt"), "do not fit its LSTM 128 classifier")
    assert_clean_failure(invoke("eval", tmp_path / "x.pt", "--limit", "0"), "--limit must be >= 1")


def test_truncated_checkpoint(tmp_path: Path) -> None:
    res = invoke("train", *QUICK, "--out", tmp_path)
    assert res.exit_code == 0
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert_clean_failure(invoke("eval", tmp_path / "cut.pt"), "not a readable checkpoint")


def test_version() -> None:
    assert invoke("--version").stdout.startswith("edge-lstm ")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sig", "code", "what"),
    [
        (signal.SIGINT, 130, ["--subset", "1000", "--test-subset", "100"]),  # Ctrl-C, MNIST
        (signal.SIGTERM, 143, ["--data", str(SERIES / "BasicMotions_TRAIN.ts")]),  # `kill`, own sequences
    ],
)
def test_a_stop_signal_keeps_the_last_epoch_and_says_how_to_resume(
    tmp_path: Path, sig: int, code: int, what: list[str]
) -> None:
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "edge_lstm", "train", *what, "--epochs", "200", "--out", str(run)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_python
    )
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.3)  # somewhere inside a later epoch
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.startswith("error: interrupted at step") and "--resume" in err and len(err.strip().splitlines()) == 1
    assert not (run / "model.pt").exists()
    assert checkpoint.load(run / "last.pt")["epoch"] >= 0


# --- resume: the hint resumes exactly that run; a finished run is left alone; differences are named
RUN_OPTIONS = dict(subset=384, test_subset=100, batch_size=64, epochs=3, lr=4e-3, seed=3, log_every=50)


def test_the_ctrl_c_hint_is_a_whole_command_that_resumes_that_run(tmp_path: Path) -> None:
    import shlex

    from edge_lstm.errors import TrainingInterrupted
    from edge_lstm.training import SilentReporter, TrainConfig, train

    class CtrlC(SilentReporter):
        def advance(self, step: int) -> None:
            if step == 8:  # inside the second epoch
                raise KeyboardInterrupt

    full = train(TrainConfig(**RUN_OPTIONS), tmp_path / "full")  # type: ignore[arg-type]
    run = tmp_path / "my run"  # a space: the hint must quote it
    with pytest.raises(TrainingInterrupted) as caught:
        train(TrainConfig(**RUN_OPTIONS), run, reporter=CtrlC())  # type: ignore[arg-type]
    hint = str(caught.value).split("`")[1]
    args = shlex.split(hint)
    assert args[:3] == ["edge-lstm", "train", "--resume"] and str(run) in args
    res = invoke(*args[1:])  # exactly the hint, nothing added
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    a, b = checkpoint.load(full.checkpoint)["state_dict"], checkpoint.load(run / "model.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    import hashlib

    res = invoke("train", *QUICK, "--out", tmp_path)
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    again = invoke("train", "--resume", "--out", tmp_path)
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert "finished run" in again.stdout and "nothing to resume" in again.stdout  # type: ignore[attr-defined]
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}


def test_resume_names_each_differing_option(tmp_path: Path) -> None:
    res = invoke("train", *QUICK, "--out", tmp_path, "--lr", "0.004")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    bad = invoke("train", "--resume", "--out", tmp_path, "--lr", "0.5", "--epochs", "9", "--log-every", "3")
    assert_clean_failure(bad, "lr: 0.004 in the run, 0.5 now")
    assert "epochs: 1 in the run, 9 now" in bad.stderr  # type: ignore[attr-defined]
    assert "log-every" not in bad.stderr  # type: ignore[attr-defined]  # free on resume: no weight depends on it


@pytest.mark.parametrize("cut", ["half", "header"])
def test_a_damaged_checkpoint_is_one_whole_sentence(tmp_path: Path, cut: str) -> None:
    res = invoke("train", *QUICK, "--out", tmp_path)
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2] if cut == "half" else data[:64])
    for args in (["eval", tmp_path / "last.pt"], ["train", "--resume", "--out", tmp_path]):
        out = invoke(*args)
        assert_clean_failure(out, "not a readable checkpoint: the file is truncated or corrupted")
        assert out.stderr.strip().endswith(".")  # type: ignore[attr-defined]
