"""The fleet's results for people: one table with a device column, and devices side by side in a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_lstm.devices.fleet import FleetReport


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.1f} us" if v < 1 else f"{v:.2f} ms"


def fleet_table(report: FleetReport) -> Any:
    """Rows grouped by device; `vs best` compares each row with the fastest of its scenario ON THAT
    DEVICE (numbers from different devices are not ratios of each other; an emulated device's
    timings are the emulator's)."""
    from rich.table import Table

    t = Table(
        title="edge-lstm bench, per device", caption="ratios within each device; emulated timings are the emulator's"
    )
    for col in (
        "device",
        "model",
        "provider",
        "scenario",
        "batch",
        "n",
        "p50",
        "p99",
        "samples/s",
        "vs best",
        "file",
        "session + first MB",
        "top operator",
    ):
        t.add_column(
            col, justify="left" if col in ("device", "model", "provider", "scenario", "top operator") else "right"
        )
    best: dict[tuple[str, str, int], float] = {}
    for r in report.rows:
        key = (r["device"], r["scenario"], r["batch"])
        metric = r.get("throughput") if r["scenario"] == "offline" else r.get("p50_ms")
        if metric:
            better = max if r["scenario"] == "offline" else min
            best[key] = better(best.get(key, metric), metric)
    for r in report.rows:
        key = (r["device"], r["scenario"], r["batch"])
        offline = r["scenario"] == "offline"
        metric = r.get("throughput") if offline else r.get("p50_ms")
        ratio = (
            "-" if not metric or key not in best else f"{(best[key] / metric if offline else metric / best[key]):.2f}x"
        )
        mem = "-"
        if r.get("session_growth_mb") is not None:
            mem = f"{r['session_growth_mb'] + (r.get('first_inference_growth_mb') or 0):.1f}"
        top = "-"
        if r.get("profile"):
            op, v = next(iter(r["profile"]["operators"].items()))
            top = f"{op} {100 * v['share']:.0f}%"
        device = r["device"] + (" (emulated)" if r.get("emulated") else "")
        size = f"{r['model_size_bytes'] / 1024:.0f} KiB" if r.get("model_size_bytes") else "-"
        t.add_row(
            device,
            Path(r["model"]).name,
            r["provider"],
            r["scenario"],
            str(r["batch"]),
            str(r["n"]),
            _ms(r.get("p50_ms")),
            _ms(r.get("p99_ms")),
            f"{r['throughput']:,.0f}" if r.get("throughput") else "-",
            ratio,
            size,
            mem,
            top,
        )
    return t


def plot_devices(report: FleetReport, path: Path) -> None:
    """Single-stream p50 per model, devices side by side (one panel per device: scales differ)."""
    from edge_lstm.plots import devices_side_by_side

    panels: dict[str, dict[str, float]] = {}
    for r in report.rows:
        if r["scenario"] in ("single-stream", "streaming-step") and r.get("p50_ms"):
            label = r["device"] + (" (emulated)" if r.get("emulated") else "")
            panels.setdefault(label, {})[f"{Path(r['model']).name} {r['scenario']}"] = r["p50_ms"] * 1000
    devices_side_by_side(panels, Path(path))


def mcu_table(report: FleetReport) -> Any:
    """Microcontrollers: cost per variant (instructions under QEMU, cycles on a board), flash, RAM."""
    from rich.table import Table

    t = Table(
        title="edge-lstm bench, microcontrollers",
        caption="QEMU counts instructions (-icount), never cycles; flash and RAM are the model's (library), "
        "RAM with the stack the firmware used",
    )
    for col in ("device", "model", "variant", "per inference", "per step", "flash", "RAM", "firmware flash"):
        t.add_column(col, justify="left" if col in ("device", "model", "variant") else "right")
    for r in report.mcu_rows:
        unit = "instr." if r["unit"] == "instructions" else "cycles"
        t.add_row(
            r["device"] + (" (QEMU)" if r.get("emulated") else ""),
            Path(r["model"]).name,
            r["variant"],
            f"{r['per_inference'] / 1e6:.2f} M {unit}",
            f"{r['per_step'] / 1e3:.1f} k {unit}",
            f"{r['flash'] / 1024:.1f} KiB",
            f"{r['ram'] / 1024:.1f} KiB",
            f"{r['footprint']['firmware_flash'] / 1024:.1f} KiB",
        )
    return t
