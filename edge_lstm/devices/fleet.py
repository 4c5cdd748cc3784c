"""`bench --on` and `eval --on`: the same job on several devices, merged into one table.

Each device runs edge-lstm's own `bench` (or `eval`) on copies of the files; the rows come back with
a `device` column and their ratios computed on that device (within one run there, as always).
`local` is this machine, run the same way (a process of its own). A device that cannot be reached,
lacks the deployment side or a provider is reported in one line, and the others go on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.devices.mcu import bench_on_mcu, eval_on_mcu, is_mcu, mcu_device
from edge_lstm.devices.remote import Remote
from edge_lstm.devices.targets import Device, resolve
from edge_lstm.errors import EdgeLstmError


@dataclass
class FleetReport:
    rows: list[dict[str, Any]] = field(default_factory=list)  # bench rows, each with "device"
    mcu_rows: list[dict[str, Any]] = field(default_factory=list)  # microcontrollers' rows (devices/mcu.py)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each device is
    failures: dict[str, str] = field(default_factory=dict)  # device -> why it gave no rows

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "results": self.rows, "mcu": self.mcu_rows, "failures": self.failures}


def remote_for(device: Device) -> Remote:
    if device.kind == "local" and device.python is None:  # this machine: this installation
        return Remote(Device(device.name, f"local?python={sys.executable}"))
    return Remote(device)


def bench_on(
    names: list[str],
    models: list[Path],
    args: list[str],
    streaming: Path | None = None,
    progress: Callable[[str], None] = print,
) -> FleetReport:
    report = FleetReport()
    for name in names:
        try:
            device = resolve(name)
            if is_mcu(device):
                target = mcu_device(device.name, device.url)
                report.devices[device.name] = target.describe()
                for m in models:
                    report.mcu_rows += bench_on_mcu(target, m, progress)
                continue
            remote = remote_for(device)
            progress(f"{device.name}: what it is")
            info = remote.info()
            report.devices[device.name] = info
            placed = {_place(remote, m): m for m in models}
            extra = []
            if streaming is not None:
                there = _place(remote, streaming)
                placed[there] = streaming
                extra = ["--streaming", there]
            progress(f"{device.name}: bench ({'emulated ' if info.get('emulated') else ''}{info.get('architecture')})")
            files = [r for r, m in placed.items() if m != streaming]
            data = [] if device.kind == "local" else ["--data-dir", remote.put_data()]
            result = remote.edge_lstm(["bench", *files, *args, *extra, *data])
            for row in result["results"]:
                local = placed.get(row["model"])
                row["model"] = str(local) if local is not None else row["model"]
                row["device"] = device.name
                row["emulated"] = bool(info.get("emulated"))
                report.rows.append(row)
            report.devices[device.name]["environment"] = result.get("environment", {})
        except EdgeLstmError as e:
            report.failures[name] = str(e)
            progress(f"error: {e}")
    return report


def _place(remote: Remote, model: Path) -> str:
    """The file's path where the device runs it: a copy there (by SHA-256), or the file itself here."""
    return str(model.resolve()) if remote.device.kind == "local" else remote.put_file(model)


def eval_on(
    name: str,
    model: Path,
    limit: int | None,
    provider: str = "cpu",
    progress: Callable[[str], None] = print,
    data: Path | None = None,
) -> dict[str, Any]:
    """The test set through `model` on the device (on `provider` there), its classes compared with this
    machine's CPU; a model of own sequences: the labelled sequences in `data`, copied there. A
    microcontroller: each variant's firmware, its rows under "variants" (devices/mcu.py)."""
    from edge_lstm.data import mnist, sequences
    from edge_lstm.runtime import Classifier

    device = resolve(name)
    if is_mcu(device):
        return eval_on_mcu(device, model, limit, data, progress)
    here_clf = Classifier(model)
    seqs = None if here_clf.arch.image else sequences.for_model(data, here_clf.arch, model, limit)

    remote = remote_for(device)
    info = remote.info()
    where = _place(remote, model)
    progress(f"{device.name}: eval ({'emulated ' if info.get('emulated') else ''}{info.get('architecture')})")
    args = ["eval", where, "--classes", "--provider", provider, *(["--limit", str(limit)] if limit else [])]
    if seqs is not None:  # the test sequences' file, copied there
        source = Path(seqs.source)
        args += ["--data", remote.put_file(source) if device.kind != "local" else str(source.resolve())]
    elif device.kind != "local":
        args += ["--data-dir", remote.put_data()]
    there = remote.edge_lstm(args)
    if seqs is None:
        test = mnist.load_split(mnist.locate(None), "test")
        here, labels = here_clf.predict_labels(test.images[: there["n"]]), test.labels[: there["n"]]
    else:
        here, labels = here_clf.predict_labels(seqs.x, lengths=seqs.lengths), seqs.labels
    theirs = np.asarray(there["classes"])
    agree = int((theirs == here).sum())
    return {
        "device": device.name,
        "device_info": info,
        "model": str(model),
        "n": there["n"],
        "accuracy_there": there["accuracy"],
        "accuracy_here": float((here == labels).mean()),
        "same_class": agree,
        "differ": [int(i) for i in np.flatnonzero(theirs != here)][:20],
    }
