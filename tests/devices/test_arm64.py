"""An aarch64 device, emulated on this machine (bench/arm64_device.sh: a Debian arm64 system whose
programs QEMU 10 runs, reached over SSH on loopback), driven as any device: `device setup` installs
the deployment side there from aarch64 wheels, `device info` says it is emulated, `eval --on` gives
the same classes as here on a few hundred test images, `bench --on` measures there. Built once and
cached under ~/.cache/edge-lstm/arm64. Needs root (binfmt_misc, chroot, bind mounts) and Debian's
package index: CI sets EDGE_LSTM_REQUIRE_ARM64=1, elsewhere it runs when EDGE_LSTM_ARM64=1."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app

pytestmark = pytest.mark.arm64
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

if not (os.environ.get("EDGE_LSTM_REQUIRE_ARM64") or os.environ.get("EDGE_LSTM_ARM64")):
    pytest.skip(
        "the emulated aarch64 device: EDGE_LSTM_ARM64=1 (root, a few minutes the first time)", allow_module_level=True
    )


def _sshd_running() -> bool:
    pid = Path(os.environ.get("EDGE_LSTM_ARM64_CACHE", Path.home() / ".cache/edge-lstm/arm64")) / "sshd.pid"
    try:
        os.kill(int(pid.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def arm64() -> Iterator[str]:
    """The device's URL, the system built (or found in the cache) and its sshd up; set up once. An sshd
    these tests started is stopped after them (one the user had up stays up); the built system stays cached."""
    was_up = _sshd_running()
    script = ["bash", str(REPO / "bench" / "arm64_device.sh")]
    proc = subprocess.run([*script, "up"], capture_output=True, text=True, timeout=1200)
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        url = proc.stdout.strip().splitlines()[-1]
        info = runner.invoke(app, ["device", "info", url, "--json"])
        assert info.exit_code == 0, info.output
        if json.loads(info.stdout.strip().splitlines()[-1])["edge_lstm"] is None:  # the cached system was never set up
            setup = runner.invoke(app, ["device", "setup", url])
            assert setup.exit_code == 0, setup.output
        yield url
    finally:
        if not was_up:
            subprocess.run([*script, "down"], capture_output=True, timeout=60)


def test_the_device_is_an_emulated_aarch64_with_the_deployment_side(arm64: str) -> None:
    res = runner.invoke(app, ["device", "info", arm64, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["architecture"] == "aarch64" and info["emulated"] is True
    assert info["onnxruntime"] and "CPUExecutionProvider" in info["providers"] and info["edge_lstm"]
    assert "EMULATED" in res.stdout


def test_every_portable_file_gives_the_classes_it_gives_here(arm64: str, exported: dict[str, Path]) -> None:
    for name in ("fp32", "int8"):
        res = runner.invoke(app, ["eval", str(exported[name]), "--on", arm64, "--limit", "300", "--json"])
        assert res.exit_code == 0, res.output
        r = json.loads(res.stdout.strip().splitlines()[-1])
        assert r["n"] == 300 and r["same_class"] >= 299, r  # int8 kernels may round one borderline image apart


def test_bench_on_here_and_the_device_in_one_table(arm64: str, exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    res = runner.invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--streaming",
            str(exported["step"]),
            "--on",
            "local",
            "--on",
            arm64,
            "--scenario",
            "single-stream",
            "--min-count",
            "10",
            "--min-time",
            "0",
            "--rounds",
            "1",
            "--warmup",
            "1",
            "--profile",
            "--json-file",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["results"]
    emulated = [r for r in rows if r["emulated"]]
    assert {r["scenario"] for r in emulated} == {"single-stream", "streaming-step"}
    assert all(r["profile"]["operators"] and r["session_growth_mb"] is not None for r in rows)
    assert "(emulated)" in res.stdout
