"""`edge-lstm web`: a self-contained static folder with the draw-a-digit page, its scripts, the model
files and onnxruntime-web's files; any static file server can serve it (`serve.py` adds the headers
that let onnxruntime-web use threads)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edge_lstm import __version__, contract
from edge_lstm.errors import ConfigError
from edge_lstm.fileio import atomic_write_text, check_writable_dir
from edge_lstm.web import ortweb

ASSETS = ("index.html", "app.js", "preprocess.js", "stats.js")


@dataclass(frozen=True)
class SiteConfig:
    out: Path = Path("export/web")
    model: Path = contract.DEFAULT_MODEL
    step: Path | None = None  # the step model for the row-by-row view; None: whole drawings only
    ort_web: Path | None = None  # onnxruntime-web's dist files; None: the pinned npm download


def default_step() -> Path | None:
    """export/step.onnx when it exists: the page then streams row by row; without it, whole drawings."""
    return contract.DEFAULT_STEP_MODEL if contract.DEFAULT_STEP_MODEL.is_file() else None


def build_site(config: SiteConfig) -> Path:
    """Write the folder; returns it. The model files are checked against the contract first."""
    from edge_lstm.runtime import Classifier, StreamingClassifier

    clf = Classifier(config.model)  # a missing file, or one the page cannot use, is refused here in one line
    if not clf.arch.image:
        raise ConfigError(f"{config.model} classifies sequences, not drawings: the page is for image models")
    # the step model's state, as its architecture declares it: the page carries it from row to row
    state = None
    if config.step is not None:
        arch = StreamingClassifier(config.step).arch
        state = [
            {"input": n, "output": o, "dims": list(arch.state_shape(n, 1))}
            for n, o in zip(arch.state_names, arch.state_outputs, strict=True)
        ]
    ort_dir = ortweb.locate(config.ort_web)
    out = Path(config.out)
    check_writable_dir(out, "OUT")
    for name in ASSETS:
        atomic_write_text(out / name, resources.files("edge_lstm.web").joinpath("assets", name).read_text())
    for name in ortweb.FILES:
        shutil.copyfile(ort_dir / name, out / name)
    shutil.copyfile(config.model, out / "model.onnx")
    if config.step is not None:
        shutil.copyfile(config.step, out / "step.onnx")
    settings = {
        "model": "model.onnx",
        "step": "step.onnx" if config.step is not None else None,
        "state": state,
        "no_digit_below": clf.no_digit_below,  # the model's "no digit" (contract.py), null where it has none
        "edge_lstm": __version__,
        "onnxruntime_web": ortweb.VERSION,
    }
    atomic_write_text(out / "config.json", json.dumps(settings, indent=1) + "\n")
    return out
