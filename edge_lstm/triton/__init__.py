"""Triton Inference Server, the real one: its model configurations for edge-lstm's files (config.py),
the Python-backend repository (repository.py, with the model.py files in backend/) that
`export --triton --triton-backend python` and `serve --triton` write, and `tritonserver` itself
started and stopped (server.py: the binary from the nvidia-pytriton wheel, or one on PATH).
"""

from edge_lstm.triton.config import TritonConfig, validate_model_dir
from edge_lstm.triton.repository import write_python_repository
from edge_lstm.triton.server import TritonError, TritonServer, TritonSettings

__all__ = [
    "TritonConfig",
    "TritonError",
    "TritonServer",
    "TritonSettings",
    "validate_model_dir",
    "write_python_repository",
]
