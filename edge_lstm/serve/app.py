"""The ASGI application: the Open Inference Protocol's routes, a picture endpoint, /metrics and
(optionally) a static folder, on Starlette. uvicorn runs it here (server.py); Ray Serve can mount the
same app on its replicas.

Routes: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}[/versions/1],
/v2/models/{name}/ready, /v2/models/{name}/config; POST /v2/models/{name}[/versions/1]/infer;
POST /predict (a picture: raw body or multipart); GET /metrics; a WebSocket at /v2/models/{name}/stream
(websocket.py: stream rows in binary frames). In front of them (hotpath.py): the token, the replica
tag, and inference itself. Every error is JSON `{"error": "..."}` with a 4xx status saying what is
wrong (503 + Retry-After when the queue is full).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from edge_lstm import __version__, contract
from edge_lstm.runtime.inputs import softmax, to_input
from edge_lstm.runtime.preprocess import load_image
from edge_lstm.serve import protocol
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.core import Core
from edge_lstm.serve.hotpath import HotPath, infer_body, read_body
from edge_lstm.serve.models import Served, StoreFactory, local_store, triton_config
from edge_lstm.serve.peers import WorkerPlace
from edge_lstm.serve.refusals import refusal
from edge_lstm.serve.static import IsolatedStatic
from edge_lstm.serve.statistics import model_stats

log = logging.getLogger("edge_lstm.serve")


def replica_tag() -> bytes:
    """host:pid, the X-Edge-Lstm-Replica header: which process of a cluster or of --workers answered."""
    return f"{socket.gethostname()}:{os.getpid()}".encode()


def error(message: str, status: int, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers or None)


def build_app(
    config: ServeConfig,
    stream_store: StoreFactory = local_store,
    tag_replica: bool = False,
    place: WorkerPlace | None = None,
) -> HotPath:
    """Load every model (errors surface here, before a port is bound) and build the app. Streams'
    states live in this process unless `stream_store` says otherwise (a cluster's shared store);
    `tag_replica` adds an X-Edge-Lstm-Replica header (host:pid) saying which process answered; `place`
    makes it one worker of `serve --workers` (workers.py), its streams routed by owner (peers.py)."""
    core = Core(config, stream_store, place)
    registry, metrics = core.registry, core.metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        fronts = []
        if config.grpc_port is not None:
            from edge_lstm.serve.grpc import start as start_grpc

            fronts.append(start_grpc)
        await core.start(fronts)
        yield
        await core.stop()  # SIGTERM: uvicorn stopped accepting; what is in flight finishes here

    def model(request: Request) -> Served:
        return registry.get(request.path_params["name"], request.path_params.get("version"))

    def answer(
        route: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Runs a handler; turns every expected failure into its status and one-line message, and counts it."""

        async def endpoint(request: Request) -> Response:
            t0 = time.perf_counter()
            name = request.path_params.get("name") or request.query_params.get("model") or core.default_classifier()
            name = name if name in registry.latest else "(unknown)"  # a label per unknown name would grow without end
            try:
                response = await handler(request)
            except Exception as e:
                refused = refusal(e, f"{request.method} {request.url.path}")
                if refused is None:
                    raise
                status, message, more = refused
                response = error(message, status, **more) if status != 499 else Response(status_code=499)
            metrics.answered(route, name, response.status_code, time.perf_counter() - t0)
            return response

        return endpoint

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": core.ready}, 200 if core.ready else 503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "edge-lstm", "version": __version__, "extensions": protocol.EXTENSIONS})

    async def model_metadata(request: Request) -> Response:
        s = model(request)
        return JSONResponse(protocol.metadata(s.name, s.spec, s.arch.classes, versions=tuple(registry.loaded[s.name])))

    async def model_ready(request: Request) -> Response:
        model(request)
        return JSONResponse({"ready": core.ready}, 200 if core.ready else 503)

    async def model_config(request: Request) -> Response:
        return JSONResponse(triton_config(model(request), config))

    async def repository_index(request: Request) -> Response:
        """Triton's model repository extension, its index (registry.py). `{"ready": true}` asks for the
        ready ones only, as Triton's does."""
        return JSONResponse(registry.index(await _ready_only(request), stopping=not core.ready))

    async def control(request: Request) -> Response:
        """Triton's model control: load (or reload: what changed on disk) or unload a model."""
        await _control_body(request)
        name = request.path_params["name"]
        await (registry.load(name) if request.path_params["op"] == "load" else registry.unload(name))
        return Response(status_code=200)

    async def stats(request: Request) -> Response:
        if "name" not in request.path_params:
            return JSONResponse(model_stats(metrics, registry.names(), registry.loaded))
        s = model(request)  # one model: its versions, or the one asked for
        asked = {s.name: {s.version: s}} if "version" in request.path_params else registry.loaded
        return JSONResponse(model_stats(metrics, [s.name], asked))

    async def picture(request: Request) -> Response:
        name = request.query_params.get("model") or core.default_classifier()
        s = registry.latest.get(name)
        if s is None or s.kind != "classifier":
            raise protocol.ProtocolError(f"no classifier named {name!r} on this server", 404)
        if not s.arch.image:
            raise protocol.ProtocolError(
                f"model {name!r} classifies sequences, not pictures; send them to /v2/models/{name}/infer", 400
            )
        filename = "the picture"
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=1, max_part_size=config.max_body) as form:
                upload = next((v for v in form.values() if not isinstance(v, str)), None)
                if upload is None:
                    raise protocol.ProtocolError("the form holds no file; send the picture as a file field")
                filename = upload.filename or filename
                data = await upload.read(config.max_body + 1)
                if len(data) > config.max_body:
                    raise protocol.ProtocolError(f"the picture is over the {config.max_body:,}-byte limit", 413)
        else:
            data = await read_body(request.receive, dict(request.headers.raw), config.max_body)
        if not data:
            raise protocol.ProtocolError("no picture: send a PNG or JPEG as the body, or as a multipart file field")
        from starlette.concurrency import run_in_threadpool

        image = await run_in_threadpool(load_image, data, True, filename)  # decoding is CPU work: off the loop
        # The version serving now: a new one may have been loaded while the picture was read and decoded
        # (the one found before is stopping), and the lookup and the submit must meet in one step.
        s = registry.get(name, None)
        logits = await s.batcher.submit(to_input(image))
        probs = softmax(logits)[0]
        label = int(probs.argmax())
        why = contract.no_digit_reason(label, float(probs[label]), s.runner.no_digit_below)
        if why is not None:  # the model's own "no digit", as `predict` says it
            raise protocol.ProtocolError(why)
        return JSONResponse(
            {
                "model": name,
                "label": label,
                "probability": float(probs[label]),
                "probabilities": [round(float(p), 6) for p in probs],
            }
        )

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def stream_socket(ws: WebSocket) -> None:
        from edge_lstm.serve.websocket import serve_socket

        await serve_socket(ws, core)

    def route(path: str, handler: Callable[[Request], Awaitable[Response]], name: str, method: str = "GET") -> Route:
        return Route(path, answer(name, handler), methods=[method])

    routes: list[Any] = [  # inference itself is answered in front of these (hotpath.py)
        route("/v2/health/live", live, "live"),
        route("/v2/health/ready", ready, "ready"),
        route("/v2", server_metadata, "server_metadata"),
        route("/v2/repository/index", repository_index, "repository_index", "POST"),
        Route("/v2/repository/models/{name}/{op:str}", answer("model_control", control), methods=["POST"]),
        route("/v2/models/stats", stats, "statistics"),  # before /v2/models/{name}: "stats" is not a model
        route("/v2/models/{name}/stats", stats, "statistics"),
        route("/v2/models/{name}/versions/{version}/stats", stats, "statistics"),
        route("/v2/models/{name}", model_metadata, "model_metadata"),
        route("/v2/models/{name}/versions/{version}", model_metadata, "model_metadata"),
        route("/v2/models/{name}/ready", model_ready, "model_ready"),
        route("/v2/models/{name}/config", model_config, "model_config"),
        route("/predict", picture, "predict", "POST"),
        Route("/metrics", metrics_route),
        WebSocketRoute("/v2/models/{name}/stream", stream_socket),
    ]
    if config.static is not None:
        routes.append(Mount("/", app=IsolatedStatic(directory=config.static, html=True)))
    inner = Starlette(routes=routes, lifespan=lifespan)
    inner.state.core, inner.state.registry, inner.state.metrics = core, registry, metrics
    app = HotPath(inner, functools.partial(infer_body, core), core, replica_tag() if tag_replica else None)
    app.state = inner.state  # what the CLI and the tests read: the core, its models, the metrics
    return app


async def _control_body(request: Request) -> None:
    """A load or unload request's body: nothing, or JSON {"parameters": {...}}. Triton's parameters that
    give a model's config or files in the request are not taken: the repository's files are."""
    if request.path_params["op"] not in ("load", "unload"):
        raise protocol.ProtocolError("model control is POST /v2/repository/models/NAME/load or /unload", 404)
    body = (await request.body()).strip()
    try:
        asked = json.loads(body) if body else {}
    except ValueError:
        raise protocol.ProtocolError('a load or unload request is JSON: {} or {"parameters": {...}}') from None
    parameters = asked.get("parameters", {}) if isinstance(asked, dict) else None
    if not isinstance(parameters, dict):
        raise protocol.ProtocolError('a load or unload request is JSON: {} or {"parameters": {...}}')
    given = [k for k in parameters if k == "config" or k.startswith("file:")]
    if given:
        raise protocol.ProtocolError(
            f"{given[0]!r}: a model's config and files come from its repository here, not from the request"
        )


async def _ready_only(request: Request) -> bool:
    body = await request.body()
    if not body.strip():
        return False
    try:
        asked = json.loads(body)
    except ValueError:
        raise protocol.ProtocolError('the repository index request is JSON: {} or {"ready": true}') from None
    if not isinstance(asked, dict) or not isinstance(asked.get("ready", False), bool):
        raise protocol.ProtocolError('the repository index request is JSON: {} or {"ready": true}')
    return bool(asked.get("ready", False))
