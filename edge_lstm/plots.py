"""PNG plots with matplotlib's Agg backend (no display needed); written atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_lstm.fileio import atomic_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: edge boxes and CI have no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, png: Path) -> None:
    with atomic_path(Path(png), suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def training_curve(rows: Sequence[dict[str, Any]], png: Path) -> None:
    """Loss and batch accuracy per logged step, test accuracy per epoch."""
    plt = _pyplot()
    steps = [r for r in rows if "loss" in r]
    epochs = [r for r in rows if "test_accuracy" in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.8, label="loss")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    ax1.grid(alpha=0.3)
    ax2.plot([r["step"] for r in steps], [r["batch_accuracy"] for r in steps], lw=0.6, alpha=0.5, label="batch")
    ax2.plot([r["step"] for r in epochs], [r["test_accuracy"] for r in epochs], "o-", label="test set")
    ax2.set_xlabel("step")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(max(0.0, min([r["test_accuracy"] for r in epochs] + [0.9]) - 0.02), 1.0)
    ax2.grid(alpha=0.3)
    ax2.legend(loc="lower right")
    fig.suptitle("edge-lstm training")
    _save(fig, png)


def accuracy_vs_rows(rows: Sequence[int], accuracies: Sequence[float], png: Path) -> None:
    """Anytime prediction: test accuracy after k of the 28 rows (streaming model)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(list(rows), [100 * a for a in accuracies], "o-", ms=3)
    ax.set_xlabel("rows seen (time steps)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("How early can the device answer?")
    ax.grid(alpha=0.3)
    _save(fig, png)


def latency_report(results: Sequence[dict[str, Any]], raw: Mapping[str, Sequence[float]], png: Path) -> None:
    """Latency distribution per configuration (box plot) and throughput against batch size."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, max(4.0, 0.35 * len(raw) + 1.5)))
    labels = list(raw)
    if labels:
        ax1.boxplot([list(raw[k]) for k in labels], orientation="horizontal", showfliers=True, whis=(1, 99))
        ax1.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax1.set_xscale("log")
    ax1.set_xlabel("latency per request (ms, log scale); whiskers p1..p99")
    ax1.grid(alpha=0.3, axis="x")
    series: dict[str, list[tuple[int, float]]] = {}
    rows = [r for r in results if r["scenario"] != "streaming-step"]  # rows/s, not images/s
    # One line per model and provider across batch sizes; split by threads only where a batch
    # size was run with several thread counts (a sweep), so each line is monotone in batch.
    sweeps = {
        (r["model"], r["provider"])
        for r in rows
        if sum(1 for q in rows if (q["model"], q["provider"], q["batch"]) == (r["model"], r["provider"], r["batch"]))
        > 1
    }
    for r in rows:
        key = f"{Path(r['model']).name} {r['provider']}"
        if (r["model"], r["provider"]) in sweeps:
            key += f" t{r['threads']}"
        series.setdefault(key, []).append((int(r["batch"]), float(r["throughput"])))
    for key, pts in sorted(series.items()):
        pts.sort()
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=key)
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("batch size")
    ax2.set_ylabel("throughput (samples/s)")
    ax2.grid(alpha=0.3)
    if series:
        ax2.legend(fontsize=7)
    fig.suptitle("edge-lstm bench")
    _save(fig, png)


def devices_side_by_side(panels: dict[str, dict[str, float]], png: Path) -> None:
    """One horizontal bar panel per device: p50 (us) per configuration."""
    plt = _pyplot()
    n = max(1, len(panels))
    fig, axes = plt.subplots(
        1, n, figsize=(5 * n, 0.5 + 0.45 * max((len(v) for v in panels.values()), default=1)), squeeze=False
    )
    for ax, (device, values) in zip(axes[0], panels.items(), strict=False):
        names = list(values)
        ax.barh(names, [values[k] for k in names], color="#4c72b0")
        ax.set_title(device)
        ax.set_xlabel("p50 (us)")
        ax.invert_yaxis()
    fig.tight_layout()
    _save(fig, png)
