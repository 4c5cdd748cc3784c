"""Serving: model files behind the Open Inference Protocol (KServe v2, what Triton, KServe and
OpenVINO Model Server speak), with dynamic batching, stateful streams and Prometheus metrics.

Above the runtime (torch-free): `protocol` is the codec, `batcher` and `streams` schedule runner
calls, `models` loads the files, `app` is the ASGI application (Starlette), `server` runs it with
uvicorn. The `[serve]` extra installs the web parts.
"""

from edge_lstm.serve.app import build_app
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.server import bind, run, start_in_thread

__all__ = ["ServeConfig", "bind", "build_app", "run", "start_in_thread"]
