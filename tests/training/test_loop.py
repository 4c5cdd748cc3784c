from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edge_lstm.arch import MNIST
from edge_lstm.errors import TrainingInterrupted
from edge_lstm.training import TrainConfig, checkpoint, preset_config, train
from edge_lstm.training.model import RecurrentClassifier, init_tutorial_

TINY = dict(subset=384, test_subset=200, batch_size=64, epochs=3, log_every=2)


def tiny_config(**changes: object) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes})  # type: ignore[arg-type]


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("batch", [1, 3, 128])
def test_model_shapes(batch: int) -> None:
    model = RecurrentClassifier()
    assert model(torch.rand(batch, 28, 28)).shape == (batch, 10)


def test_tutorial_init() -> None:
    torch.manual_seed(1)
    model = RecurrentClassifier()
    init_tutorial_(model)
    assert abs(float(model.fc_in.weight.detach().std()) - 1.0) < 0.1
    assert torch.all(model.fc_out.bias == 0.1)
    b = model.rnn.bias_ih_l0
    assert torch.all(b[128:256] == 1.0) and torch.all(b[:128] == 0) and torch.all(model.rnn.bias_hh_l0 == 0)


def test_seed_preset_is_the_tutorial() -> None:
    c = preset_config("seed")
    assert (c.optimizer, c.lr, c.batch_size, c.max_samples, c.seed, c.init) == (
        "adam",
        1e-3,
        128,
        100_000,
        1,
        "tutorial",
    )
    assert c.schedule == "constant" and c.grad_clip is None and c.weight_decay == 0
    assert (MNIST.steps, MNIST.features, MNIST.in_units, MNIST.hidden, MNIST.n_classes) == (28, 28, 64, 128, 10)
    assert (MNIST.cell, MNIST.layers, c.cell, c.layers, c.hidden, c.in_units) == ("lstm", 1, "lstm", 1, 128, 64)


def test_seed_preset_runs_782_steps(tmp_path: Path) -> None:
    # The tutorial's loop `while step * 128 < 100000` makes 782 steps; with a small subset it still does.
    c = preset_config("seed")
    res = train(TrainConfig(**{**c.__dict__, "subset": 60000, "test_subset": 100, "max_samples": 128 * 5}), tmp_path)
    assert res.steps == 5


def test_deterministic(tmp_path: Path) -> None:
    a = train(tiny_config(), tmp_path / "a")
    b = train(tiny_config(), tmp_path / "b")
    sa = checkpoint.load(a.checkpoint)["state_dict"]
    sb = checkpoint.load(b.checkpoint)["state_dict"]
    assert states_equal(sa, sb)
    c = train(tiny_config(seed=2), tmp_path / "c")
    assert not states_equal(sa, checkpoint.load(c.checkpoint)["state_dict"])


_KILLER = """
import os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads({threads})  # bit-identical results need the same thread count on both sides
from edge_lstm.training import TrainConfig, SilentReporter, train

class Killer(SilentReporter):
    def advance(self, step):
        if step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like a power cut

train(TrainConfig(**{config}), Path(sys.argv[1]), reporter=Killer())
"""


def test_resume_after_sigkill_matches_uninterrupted(tmp_path: Path) -> None:
    full = train(tiny_config(), tmp_path / "full")
    run = tmp_path / "killed"
    steps_per_epoch = 384 // 64
    script = _KILLER.format(
        kill_at=steps_per_epoch + 3, config=repr(TINY), threads=torch.get_num_threads()
    )  # mid-way through epoch 2
    proc = subprocess.run([sys.executable, "-c", script, str(run)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert (run / "last.pt").exists() and not (run / "model.pt").exists()
    assert checkpoint.load(run / "last.pt")["epoch"] == 0
    resumed = train(tiny_config(), run, resume=True)
    assert resumed.steps == full.steps and resumed.epochs == full.epochs
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    assert steps == sorted(set(steps))  # the killed epoch's lines were not logged twice
    assert states_equal(
        checkpoint.load(full.checkpoint)["state_dict"], checkpoint.load(resumed.checkpoint)["state_dict"]
    )


def test_ctrl_c_keeps_last_complete_checkpoint(tmp_path: Path) -> None:
    from edge_lstm.training import SilentReporter

    class CtrlC(SilentReporter):
        def advance(self, step: int) -> None:
            if step == 8:
                raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(tiny_config(), tmp_path, reporter=CtrlC())
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 0
    assert not (tmp_path / "model.pt").exists()


def test_resume_with_other_options_is_refused(tmp_path: Path) -> None:
    train(tiny_config(epochs=1), tmp_path)
    from edge_lstm.errors import CheckpointError

    with pytest.raises(CheckpointError, match="other training options"):
        train(tiny_config(lr=0.5), tmp_path, resume=True)


def test_run_folder_contents(tmp_path: Path) -> None:
    res = train(tiny_config(epochs=1), tmp_path)
    payload = checkpoint.load(res.checkpoint)
    assert {"state_dict", "arch", "train_config", "metrics", "edge_lstm_version"} <= payload.keys()
    assert payload["metrics"]["test_accuracy"] == res.test_accuracy
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in rows) and any("test_accuracy" in r for r in rows)
    assert (tmp_path / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_is_loaded_weights_only(tmp_path: Path) -> None:
    # A pickle that would run code is refused, not executed.
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    from edge_lstm.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        checkpoint.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_logits_per_step_ends_with_the_forward_logits() -> None:
    model = RecurrentClassifier().eval()
    x = torch.rand(3, 28, 28)
    with torch.inference_mode():
        per_step = model.logits_per_step(x)
        assert per_step.shape == (3, 28, 10)
        assert torch.allclose(per_step[:, -1], model(x), atol=1e-6)


def test_anytime_loss_trains_and_is_validated(tmp_path: Path) -> None:
    from edge_lstm.errors import ConfigError

    plain = train(tiny_config(epochs=1), tmp_path / "plain")
    anytime = train(tiny_config(epochs=1, anytime=0.5), tmp_path / "anytime")
    a = checkpoint.load(plain.checkpoint)["state_dict"]
    b = checkpoint.load(anytime.checkpoint)
    assert b["train_config"]["anytime"] == 0.5 and not states_equal(a, b["state_dict"])
    with pytest.raises(ConfigError, match="anytime"):
        tiny_config(anytime=-1).validate()
