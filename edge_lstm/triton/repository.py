"""Writing a Triton model repository: each model folder written beside its final place, checked with
Triton's schema against its file, then swapped in whole (a failed write leaves the old folder)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from edge_lstm.fileio import check_writable_dir
from edge_lstm.triton.config import CLASSIFIER, STEP, TritonConfig, classifier_config, step_config, validate_model_dir


def install_model(repo: Path, name: str, model: bytes, config_text: str, code: dict[str, str] | None = None) -> Path:
    """REPO/NAME/{config.pbtxt, 1/model.onnx[, 1/model.py and what it imports]}, validated, replacing any
    older NAME."""
    tmp = repo / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "1").mkdir(parents=True)
    (tmp / "1" / "model.onnx").write_bytes(model)
    (tmp / "config.pbtxt").write_text(config_text)
    for filename, source in (code or {}).items():  # the Python backend looks beside the version's file
        (tmp / "1" / filename).write_text(source)
    try:
        validate_model_dir(tmp, name)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = repo / name
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def backend_source(kind: str) -> dict[str, str]:
    """The model.py that runs a file of this kind ("classifier" or "streaming-step") in Triton's Python
    backend, and the module it shares with the other kind, by their file names in the version folder."""
    folder = resources.files("edge_lstm.triton.backend")
    model = folder.joinpath("step.py" if kind == "streaming-step" else "classifier.py").read_text()
    return {"model.py": model, "edge_lstm_backend.py": folder.joinpath("common.py").read_text()}


def write_python_model(repo: Path, kind: str, model: Path, config: TritonConfig) -> Path:
    """One model of the Python-backend repository: the file as it is (step.py keeps the state in the
    file's own (1, batch, hidden) layout, so no other layout is needed) beside the model.py that runs it."""
    if kind == "streaming-step":
        return install_model(repo, config.name or STEP, model.read_bytes(), step_config(config), backend_source(kind))
    return install_model(
        repo, config.name or CLASSIFIER, model.read_bytes(), classifier_config(config), backend_source(kind)
    )


def write_python_repository(
    repo: Path, classifier: Path | None, step: Path | None, config: TritonConfig = TritonConfig()
) -> list[Path]:
    """The classifier and the step model (either may be None) in a Python-backend repository."""
    check_writable_dir(repo, "the Triton repository")
    pairs = (("classifier", classifier), ("streaming-step", step))
    return [write_python_model(repo, kind, path, config) for kind, path in pairs if path is not None]
