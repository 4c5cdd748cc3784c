"""Writing a Triton model repository: each model folder written beside its final place, checked with
Triton's schema against its file, then swapped in whole (a failed write leaves the old folder)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from edge_lstm.fileio import check_writable_dir
from edge_lstm.triton.config import CLASSIFIER, STEP, TritonConfig, classifier_config, step_config, validate_model_dir


def install_model(repo: Path, name: str, model: bytes, config_text: str, model_py: str | None = None) -> Path:
    """REPO/NAME/{config.pbtxt, 1/model.onnx[, 1/model.py]}, validated, replacing any older NAME."""
    tmp = repo / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "1").mkdir(parents=True)
    (tmp / "1" / "model.onnx").write_bytes(model)
    (tmp / "config.pbtxt").write_text(config_text)
    if model_py is not None:
        (tmp / "1" / "model.py").write_text(model_py)  # the Python backend looks beside the version's file
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


def backend_source(kind: str) -> str:
    """The model.py that runs a file of this kind ("classifier" or "streaming-step") in Triton's Python backend."""
    module = "step.py" if kind == "streaming-step" else "classifier.py"
    return resources.files("edge_lstm.triton.backend").joinpath(module).read_text()


def write_python_repository(
    repo: Path, classifier: Path | None, step: Path | None, config: TritonConfig = TritonConfig()
) -> list[Path]:
    """The Python-backend repository: the files as they are (no other layout needed: step.py keeps the
    state in the file's own (1, batch, hidden) layout), each beside the model.py that runs it."""
    check_writable_dir(repo, "the Triton repository")
    written = []
    if classifier is not None:
        written.append(install_model(repo, CLASSIFIER, classifier.read_bytes(), classifier_config(config),
                                     backend_source("classifier")))  # fmt: skip
    if step is not None:
        written.append(install_model(repo, STEP, step.read_bytes(), step_config(config),
                                     backend_source("streaming-step")))  # fmt: skip
    return written
