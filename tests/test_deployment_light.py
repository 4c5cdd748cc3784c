"""The deployment side never imports PyTorch, and `--help` stays instant."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

_SCRIPT = """
import sys
from typer.testing import CliRunner
from edge_lstm.cli import app
r = CliRunner()
model, step = sys.argv[1], sys.argv[2]
for args in (
    ["eval", model, "--limit", "50"],
    ["eval", step, "--streaming", "--limit", "50", "--plot", sys.argv[3]],
    ["inspect", model],
    ["predict", model, sys.argv[4]],
    ["providers"],
    ["bench", model, "--min-time", "0.05", "--min-count", "5", "--rounds", "1", "--warmup", "1", "--batch", "8"],
):
    res = r.invoke(app, args)
    assert res.exit_code == 0, (args, res.output)
heavy = sorted(m for m in ("torch", "onnxscript") if m in sys.modules)
print("heavy:", heavy)
sys.exit(1 if heavy else 0)
"""


def test_deployment_commands_do_not_import_torch(exported: dict[str, Path], tmp_path: Path) -> None:
    import numpy as np

    from edge_lstm.data import mnist

    npy = tmp_path / "digits.npy"
    np.save(npy, mnist.load_split(mnist.BUNDLED_DIR, "test").images[:3])
    args = [str(exported["fp32"]), str(exported["step"]), str(tmp_path / "c.png"), str(npy)]
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "heavy: []" in proc.stdout


def test_help_is_instant() -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edge_lstm", "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0 and "train" in proc.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import edge_lstm.cli, sys; print(sorted(m for m in "
            "('torch', 'onnxruntime', 'onnx', 'numpy', 'matplotlib') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]", probe.stdout  # nothing heavy at import time
    assert elapsed < 5.0  # generous for a loaded CI machine; typically ~0.4 s


def test_training_without_torch_says_what_to_install(exported: dict[str, Path], trained: Path) -> None:
    """An edge install (no torch): train, eval of a checkpoint and bench --torch say what to install,
    with the torch==2.13.0 a fresh machine needs, in one line."""
    for args in (
        ["train"],
        ["eval", str(trained)],
        [
            "bench",
            str(exported["fp32"]),
            "--torch",
            "--torch-checkpoint",
            str(trained),
            "--min-count",
            "5",
            "--min-time",
            "0",
        ],
    ):
        script = (
            "import sys; sys.modules['torch'] = None; from edge_lstm.cli import main; "
            f"sys.argv = ['edge-lstm', *{args!r}]; main()"
        )
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith("error: torch is not installed") and "torch==2.13.0 -e '.[torch]'" in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_optional_parts_without_their_extra_say_what_to_install(exported: dict[str, Path], tmp_path: Path) -> None:
    """serve and web --serve without the serve extra, --ray without the ray extra: one line naming
    the extra, exit 1, no traceback (the module is hidden as an install without it would lack it)."""
    cases = [
        ("starlette", ["serve", str(exported["fp32"]), "--port", "0"], "pip install -e '.[serve]'"),
        (
            "uvicorn",
            ["web", str(tmp_path / "page"), "--model", str(exported["fp32"]), "--no-step", "--serve", "--port", "0"],
            "pip install -e '.[serve]'",
        ),
        (
            "ray",
            [
                "predict",
                str(exported["fp32"]),
                str(Path(__file__).parents[1] / "data" / "samples"),
                "--ray",
                "local",
                "--out",
                str(tmp_path / "r.csv"),
            ],
            "pip install -e '.[ray]'",
        ),
    ]
    for hidden, args, hint in cases:
        script = (
            f"import sys; sys.modules[{hidden!r}] = None; from edge_lstm.cli import main; "
            f"sys.argv = ['edge-lstm', *{args!r}]; main()"
        )
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith(f"error: {hidden} is not installed") and hint in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
