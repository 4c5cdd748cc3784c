"""Devices over a real SSH connection: an sshd on 127.0.0.1 with a key made for the test (its own
config, host key and known_hosts; everything removed afterwards), reached through the system's
OpenSSH client exactly as a user's device is. The device is this machine, its edge-lstm the one
under test (`?python=`): info, bench --on and eval --on end to end, and every way a device fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.serve.server import free_port

runner = CliRunner()
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@pytest.fixture(scope="module")
def ssh_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(SSHD).is_file() or shutil.which("ssh") is None:
        if os.environ.get("EDGE_LSTM_REQUIRE_SSH"):
            raise AssertionError("OpenSSH (openssh-server, openssh-client) is not installed")
        pytest.skip("needs OpenSSH's sshd and ssh (apt-get install openssh-server openssh-client)")
    d = tmp_path_factory.mktemp("ssh")
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    for key in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    shutil.copy(d / "user.pub", d / "authorized_keys")
    port = free_port("127.0.0.1")
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n"
    )
    (d / "ssh_config").write_text(
        f"Host 127.0.0.1\n  User {user}\n  Port {port}\n  IdentityFile {d / 'user'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {d / 'known_hosts'}\n  StrictHostKeyChecking accept-new\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(100):
        with closing(socket.socket()) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    home = d / "device-home"
    yield f"ssh://{user}@127.0.0.1:{port}?config={d / 'ssh_config'}&python={sys.executable}&dir={home}"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)  # nothing left behind: keys, config, copied files


def one_line_error(res: object, fragment: str) -> None:
    err = res.stderr  # type: ignore[attr-defined]
    assert res.exit_code == 1, res.output  # type: ignore[attr-defined]
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) >= 1 and fragment in err and "Traceback" not in err, err


def test_info_over_ssh(ssh_device: str) -> None:
    res = runner.invoke(app, ["device", "info", ssh_device, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["architecture"] == os.uname().machine and info["emulated"] is False
    assert info["onnxruntime"] and "CPUExecutionProvider" in info["providers"] and info["edge_lstm"]


def test_bench_on_here_and_over_ssh_in_one_table(ssh_device: str, exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    args = [
        "bench",
        str(exported["fp32"]),
        str(exported["int8"]),
        "--on",
        "local",
        "--on",
        ssh_device,
        "--scenario",
        "single-stream",
        "--min-count",
        "20",
        "--min-time",
        "0",
        "--rounds",
        "1",
        "--warmup",
        "2",
        "--profile",
        "--json-file",
        str(out),
    ]
    res = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    devices = {r["device"] for r in report["results"]}
    assert devices == {"local", "127.0.0.1"} and not report["failures"]
    assert {Path(r["model"]).name for r in report["results"]} == {"model.onnx", "model.int8.onnx"}
    assert all(r["profile"]["operators"] and r["model_size_bytes"] for r in report["results"])
    # sorted by name: each file sits in a folder named by its SHA-256, so path order is the hashes' order
    copied = sorted((Path(ssh_device.split("dir=")[1]) / "models").rglob("*.onnx"), key=lambda p: p.name)
    assert [p.name for p in copied] == ["model.int8.onnx", "model.onnx"]
    before = [p.stat().st_mtime_ns for p in copied]
    assert runner.invoke(app, args).exit_code == 0
    assert [p.stat().st_mtime_ns for p in copied] == before  # the same bytes are not copied again
    assert "127.0.0.1" in res.stdout and "local" in res.stdout


def test_eval_on_a_device_compares_its_classes_with_here(ssh_device: str, exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["eval", str(exported["fp32"]), "--on", ssh_device, "--limit", "200", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["n"] == 200 and r["same_class"] == 200 and r["accuracy_there"] == r["accuracy_here"]
    assert "same class as this machine for 200 of 200 images" in res.stdout


def test_an_unreachable_device_is_one_line_and_the_others_go_on(exported: dict[str, Path]) -> None:
    dead = "ssh://nobody@127.0.0.1:9"
    res = runner.invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--on",
            dead,
            "--on",
            "local",
            "--scenario",
            "single-stream",
            "--min-count",
            "5",
            "--min-time",
            "0",
            "--rounds",
            "1",
        ],
    )
    one_line_error(res, "cannot reach ssh://nobody@127.0.0.1:9")
    assert "local" in res.stdout  # the other device's rows are there
    one_line_error(runner.invoke(app, ["device", "info", dead]), "cannot reach")


def test_a_device_without_the_deployment_side_or_the_provider(
    ssh_device: str, exported: dict[str, Path], tmp_path: Path
) -> None:
    bare = shutil.which("python3", path="/usr/bin:/bin")  # the system's Python: no onnxruntime, no edge-lstm
    assert bare is not None
    no_side = ssh_device.replace(f"python={sys.executable}", f"python={bare}")
    res = runner.invoke(app, ["bench", str(exported["fp32"]), "--on", no_side, "--min-count", "5", "--min-time", "0"])
    one_line_error(res, "run `edge-lstm device setup")
    res = runner.invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--on",
            ssh_device,
            "--provider",
            "cuda",
            "--min-count",
            "5",
            "--min-time",
            "0",
        ],
    )
    one_line_error(res, "onnxruntime-gpu")


def test_adb_up_to_its_answer(exported: dict[str, Path]) -> None:
    res = runner.invoke(app, ["device", "info", "adb://emulator-5554"])
    if shutil.which("adb") is None:
        one_line_error(res, "adb is not installed")
    else:
        one_line_error(res, "adb has no device 'emulator-5554'")


def test_devices_are_named_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert runner.invoke(app, ["device", "add", "pi", "ssh://pi@127.0.0.1:2200"]).exit_code == 0
    listed = runner.invoke(app, ["device", "list", "--json"])
    assert json.loads(listed.stdout.strip().splitlines()[-1]) == {"pi": "ssh://pi@127.0.0.1:2200"}
    one_line_error(
        runner.invoke(app, ["device", "add", "x", "ftp://nope"]),
        "ssh://[user@]host[:port], adb://SERIAL, local, qemu:MACHINE",
    )
    one_line_error(runner.invoke(app, ["device", "info", "nosuch"]), "no device named 'nosuch'")
    assert runner.invoke(app, ["device", "remove", "pi"]).exit_code == 0
    assert "no devices yet" in runner.invoke(app, ["device", "list"]).stdout


def test_on_forwards_the_measuring_options_and_refuses_what_only_runs_here(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "local.json"
    res = runner.invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--on",
            "local",
            "--scenario",
            "single-stream",
            "--concurrency",
            "2",
            "--min-count",
            "10",
            "--min-time",
            "0",
            "--rounds",
            "1",
            "--json-file",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert [r["concurrency"] for r in json.loads(out.read_text())["results"]] == [2]  # it reached the device's bench
    one_line_error(
        runner.invoke(app, ["bench", str(exported["fp32"]), "--on", "local", "--torch"]), "--torch cannot go with it"
    )
    one_line_error(
        runner.invoke(app, ["bench", "http://127.0.0.1:9/v2/models/m", "--on", "local"]),
        "a server URL cannot go with it",
    )
    one_line_error(
        runner.invoke(app, ["eval", str(exported["step"]), "--on", "local", "--streaming"]),
        "--streaming, --plot and --classes run here",
    )
