"""The Open Inference Protocol's gRPC service (`inference.GRPCInferenceService`, what Triton serves on
port 8001), beside HTTP in the same process and event loop, over the same models, batchers and
stream table: `tritonclient.grpc` and other KServe v2 gRPC clients work unchanged.

The service's stubs are the ones the Triton project publishes with its client (tritonclient's
service_pb2*), run by grpcio's asyncio server: nothing of the wire format is written here, only the
mapping between its messages and the requests app.py serves. Needs `pip install -e '.[serve]'`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import numpy as np

from edge_lstm import __version__
from edge_lstm.errors import EdgeLstmError
from edge_lstm.serve import protocol
from edge_lstm.serve.core import UNAUTHORIZED, Core
from edge_lstm.serve.infer import answer, run_model
from edge_lstm.serve.models import Served, triton_config
from edge_lstm.serve.refusals import refusal
from edge_lstm.serve.statistics import model_stats
from edge_lstm.serve.streams import InOrder


def _parameters(params: Any) -> dict[str, Any]:
    """InferParameter map -> plain values (bool, int, str, float)."""
    out = {}
    for key, p in params.items():
        kind = p.WhichOneof("parameter_choice")
        if kind is not None:
            out[key] = getattr(p, kind)
    return out


def decode(request: Any) -> protocol.InferRequest:
    """A ModelInferRequest -> the same InferRequest HTTP requests become (raw or typed contents)."""
    inputs = {}
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise protocol.ProtocolError(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    for k, t in enumerate(request.inputs):
        spec = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        if raw:
            arr = protocol.tensor(spec, raw[k])
        else:
            values = list(t.contents.fp32_contents) or list(t.contents.fp64_contents) or list(t.contents.uint_contents)
            arr = protocol.tensor({**spec, "data": values}, None)
        if t.name in inputs:
            raise protocol.ProtocolError(f"input {t.name!r} is given twice")
        inputs[t.name] = arr
    if not inputs:
        raise protocol.ProtocolError("an inference request needs at least one input")
    outputs = {o.name: True for o in request.outputs} or None
    classification = {
        o.name: protocol.classification_count(o.name, params["classification"])
        for o in request.outputs
        if "classification" in (params := _parameters(o.parameters))
    }
    return protocol.InferRequest(
        request.id or None, inputs, _parameters(request.parameters), outputs, True, classification
    )


def make_service(core: Core) -> Any:
    import grpc
    from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

    config, registry, metrics = core.config, core.registry, core.metrics
    # any other refusal: INVALID_ARGUMENT
    codes = {404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}

    async def guard(context: Any) -> None:
        if not core.authorized(dict(context.invocation_metadata()).get("authorization")):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHORIZED)

    def found(name: str, version: str) -> tuple[Served | None, str]:
        try:
            return registry.get(name, version or None), ""
        except protocol.ProtocolError as e:
            return None, str(e)

    async def model(name: str, version: str, context: Any) -> Served:
        s, why = found(name, version)
        if s is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, why)
        assert s is not None
        return s

    async def refused(context: Any, e: Exception, what: str) -> None:
        """A refusal (refusals.py) as this front's status: the call aborts with its one line."""
        out = refusal(e, what)
        if out is None:
            raise e
        await context.abort(codes.get(out[0], grpc.StatusCode.INVALID_ARGUMENT), out[1])

    async def infer(request: Any) -> tuple[Any, Any, str]:
        """(the response, None, "") or (None, the gRPC status, why): ModelInfer aborts with it, a stream
        answers it in-stream and goes on."""
        s, why = found(request.model_name, request.model_version)
        if s is None:
            return None, grpc.StatusCode.NOT_FOUND, why
        t0 = time.perf_counter()
        try:
            req = decode(request)
            result = answer(s, req, await run_model(s, req, config, pinned=bool(request.model_version))).array
        except Exception as e:
            refused = refusal(e, f"gRPC infer {request.model_name}")
            if refused is None:
                raise
            status, why, _ = refused
            metrics.answered("infer", s.name, status, time.perf_counter() - t0, str(s.version))
            return None, codes.get(status, grpc.StatusCode.INVALID_ARGUMENT), why
        metrics.answered("infer", s.name, 200, time.perf_counter() - t0, str(s.version))
        strings = result.dtype == object  # the classification extension's BYTES
        out = service_pb2.ModelInferResponse.InferOutputTensor(
            name="logits", datatype="BYTES" if strings else "FP32", shape=list(result.shape)
        )
        raw = protocol.bytes_tensor(result) if strings else np.ascontiguousarray(result, "<f4").tobytes()
        response = service_pb2.ModelInferResponse(
            model_name=s.name, model_version=str(s.version), id=request.id, outputs=[out], raw_output_contents=[raw]
        )
        return response, None, ""

    class Service(service_pb2_grpc.GRPCInferenceServiceServicer):
        async def ServerLive(self, request: Any, context: Any) -> Any:
            return service_pb2.ServerLiveResponse(live=True)

        async def ServerReady(self, request: Any, context: Any) -> Any:
            return service_pb2.ServerReadyResponse(ready=core.ready)

        async def ModelReady(self, request: Any, context: Any) -> Any:
            await guard(context)
            return service_pb2.ModelReadyResponse(
                ready=core.ready and found(request.name, request.version)[0] is not None
            )

        async def ServerMetadata(self, request: Any, context: Any) -> Any:
            await guard(context)
            return service_pb2.ServerMetadataResponse(
                name="edge-lstm", version=__version__, extensions=protocol.EXTENSIONS
            )

        async def ModelMetadata(self, request: Any, context: Any) -> Any:
            await guard(context)
            s = await model(request.name, request.version, context)
            meta = protocol.metadata(s.name, s.spec, s.arch.classes)
            tensor = service_pb2.ModelMetadataResponse.TensorMetadata
            return service_pb2.ModelMetadataResponse(
                name=s.name,
                versions=[str(v) for v in registry.loaded[s.name]],
                platform=meta["platform"],
                inputs=[tensor(**t) for t in meta["inputs"]],
                outputs=[tensor(**t) for t in meta["outputs"]],
            )

        async def RepositoryIndex(self, request: Any, context: Any) -> Any:
            await guard(context)
            index = registry.index(request.ready, stopping=not core.ready)
            model = service_pb2.RepositoryIndexResponse.ModelIndex
            return service_pb2.RepositoryIndexResponse(models=[model(**m) for m in index])

        async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
            await guard(context)
            if "config" in request.parameters or any(k.startswith("file:") for k in request.parameters):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "a model's config and files come from its repository here"
                )
            try:
                await registry.load(request.model_name)
            except protocol.ProtocolError as e:
                await refused(context, e, f"gRPC load {request.model_name}")
            return service_pb2.RepositoryModelLoadResponse()

        async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
            await guard(context)
            try:
                await registry.unload(request.model_name)
            except protocol.ProtocolError as e:
                await refused(context, e, f"gRPC unload {request.model_name}")
            return service_pb2.RepositoryModelUnloadResponse()

        async def ModelStatistics(self, request: Any, context: Any) -> Any:
            await guard(context)
            from google.protobuf import json_format

            if request.name:  # one model: its versions, or the one asked for
                s = await model(request.name, request.version, context)
                stats = model_stats(metrics, [s.name], {s.name: {s.version: s}} if request.version else registry.loaded)
            else:
                stats = model_stats(metrics, registry.names(), registry.loaded)
            return json_format.ParseDict(stats, service_pb2.ModelStatisticsResponse())

        async def ModelConfig(self, request: Any, context: Any) -> Any:
            await guard(context)
            s = await model(request.name, request.version, context)
            from google.protobuf import json_format

            cfg = json_format.ParseDict(triton_config(s, config), model_config_pb2.ModelConfig())
            return service_pb2.ModelConfigResponse(config=cfg)

        async def ModelInfer(self, request: Any, context: Any) -> Any:
            await guard(context)
            response, code, why = await infer(request)
            if response is None:
                await context.abort(code, why)
            return response

        async def ModelStreamInfer(self, requests: Any, context: Any) -> Any:
            """Triton's bidirectional stream (tritonclient's start_stream / async_stream_infer): every
            request answered on the stream, a refused one with its error_message, and the stream goes on.
            Requests of one sequence run in their order; of different sequences at once, so rows waiting
            at the same moment share a step call (streams.py)."""
            await guard(context)
            answers: asyncio.Queue[Any] = asyncio.Queue()
            order = InOrder()

            async def one(request: Any) -> None:
                response, _, why = await infer(request)
                if response is None:
                    response = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
                await answers.put(service_pb2.ModelStreamInferResponse(error_message=why, infer_response=response))

            async def read() -> None:
                try:
                    async for request in requests:
                        sid = _parameters(request.parameters).get("sequence_id") or None
                        order.run(sid, functools.partial(one, request))
                    await order.finish()  # the client closed its side: answer what it sent, then end the stream
                finally:
                    order.cancel()  # the client went away: nothing left to answer
                    await answers.put(None)

            reader = asyncio.get_running_loop().create_task(read())
            try:
                while (item := await answers.get()) is not None:
                    yield item
            finally:
                reader.cancel()

    return Service()


async def start(core: Core) -> Any:
    """The gRPC server on config.host:config.grpc_port, started; its `stop(grace)` stops it."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    config = core.config
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", config.max_body)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(make_service(core), server)
    address = f"[{config.host}]:{config.grpc_port}" if ":" in config.host else f"{config.host}:{config.grpc_port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise EdgeLstmError(f"cannot serve gRPC on {address}; choose another --grpc-port")
    await server.start()
    return server
