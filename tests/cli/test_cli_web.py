from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.web import ortweb

runner = CliRunner()


def test_web_builds_a_self_contained_folder(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "site"
    res = runner.invoke(
        app, ["web", str(out), "--model", str(exported["fp32"]), "--step", str(exported["step"]), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["folder"] == str(out)
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "app.js", "preprocess.js", "stats.js", "model.onnx", "step.onnx", "config.json"} <= names
    assert set(ortweb.FILES) <= names  # onnxruntime-web's own files travel with the page
    assert json.loads((out / "config.json").read_text())["onnxruntime_web"] == ortweb.VERSION


def test_web_bad_inputs(exported: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        (["--model", str(tmp_path / "none.onnx")], "not found"),
        (["--model", str(exported["step"])], "streaming step model"),
        (["--model", str(exported["fp32"]), "--step", str(exported["fp32"])], "not an edge-lstm streaming model"),
        (["--model", str(exported["fp32"]), "--no-step", "--ort-web", str(tmp_path)], "missing ort.wasm.min.js"),
    ]
    for args, fragment in cases:
        res = runner.invoke(app, ["web", str(tmp_path / "site"), *args])
        assert res.exit_code == 1 and "Traceback" not in res.output, res.output
        (line,) = res.stderr.strip().splitlines()
        assert fragment in line, line


def test_serve_on_a_taken_port_is_one_clean_line(exported: dict[str, Path], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = runner.invoke(
            app,
            [
                "web",
                str(tmp_path / "site"),
                "--model",
                str(exported["fp32"]),
                "--no-step",
                "--serve",
                "--port",
                str(port),
            ],
        )
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    (line,) = res.stderr.strip().splitlines()
    assert f"cannot serve on 127.0.0.1:{port}" in line and "--port" in line


def test_web_serve_is_one_server_quiet_about_cut_downloads_and_130_on_ctrl_c(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    """The page and its models from `edge-lstm serve`'s server: a reload that cuts a 10 MB download is
    at most one log line, never a traceback, and Ctrl-C exits 130 as every other command does."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_lstm",
            "web",
            str(tmp_path / "site"),
            "--model",
            str(exported["fp32"]),
            "--no-step",
            "--serve",
            "--port",
            "0",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("{"):
            url = json.loads(line)["url"]
            break
    assert url, proc.stderr.read() if proc.stderr else ""
    with urllib.request.urlopen(url) as r:  # the page, with the isolation headers its threads need
        assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp" and b"<html" in r.read().lower()
    with urllib.request.urlopen(url + "v2/models/edge_lstm") as r:  # ... and its model, behind the protocol
        assert json.loads(r.read())["inputs"][0]["name"] == "images"
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    wasm = next(n for n in ortweb.FILES if n.endswith(".wasm"))
    for _ in range(3):  # a download cut short, three times (a reload, a closed tab)
        s = socket.create_connection((host, int(port)))
        s.sendall(f"GET /{wasm} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset, not close
        s.close()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
