"""One inference request against one served model, whatever carried it (HTTP's body in hotpath.py,
gRPC in grpc.py): the request's tensors checked against the model's contract, then the dynamic batcher
(classifier) or the stream table and sequence batcher (step model). Nothing here knows a transport."""

from __future__ import annotations

import asyncio

import numpy as np

from edge_lstm import contract
from edge_lstm.runtime.inputs import to_input, to_lengths
from edge_lstm.serve import protocol
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.models import Served


def answer(s: Served, req: protocol.InferRequest, logits: np.ndarray) -> protocol.Tensor:
    """The logits, or the k best classes where the request asked (Triton's classification extension)."""
    k = req.classification.get(contract.OUTPUT)
    return protocol.Tensor(contract.OUTPUT, logits if k is None else protocol.classify(logits, k, s.arch.classes))


async def run_model(s: Served, req: protocol.InferRequest, config: ServeConfig, pinned: bool = False) -> np.ndarray:
    """The logits of a request: (B, 10) for a classifier, (rows, 10) for a stream's rows. `pinned`: the
    request named its version (a stream's rows otherwise run on the version the stream started on)."""
    if s.kind == "streaming-step":
        return await run_stream(s, req, s.version if pinned else None)
    return await run_classifier(s, req, config)


def one_input(s: Served, req: protocol.InferRequest, optional: tuple[str, ...] = ()) -> np.ndarray:
    want = s.spec.inputs[0].name
    if want not in req.inputs or set(req.inputs) - {want, *optional}:
        also = f" (and optionally {', '.join(optional)})" if optional else ""
        raise protocol.ProtocolError(
            f"model {s.name!r} takes the input {want!r}{also}; got {', '.join(req.inputs) or 'none'}"
        )
    if req.outputs is not None and set(req.outputs) - {contract.OUTPUT}:
        raise protocol.ProtocolError(f"model {s.name!r} has one output, {contract.OUTPUT!r}")
    return req.inputs[want]


async def run_classifier(s: Served, req: protocol.InferRequest, config: ServeConfig) -> np.ndarray:
    if "sequence_id" in req.parameters:
        raise protocol.ProtocolError(f"model {s.name!r} is not a sequence model; send whole images")
    takes_lengths = "lengths" in s.spec.input_names
    x = one_input(s, req, ("lengths",) if takes_lengths else ())
    most = min(config.max_request_batch, config.max_queue)
    if x.ndim == 3 and len(x) > most:
        raise protocol.ProtocolError(f"{len(x)} images in one request; at most {most}", 413)
    images = to_input(x, arch=s.arch)  # shape, dtype, range and NaN checked against the contract, per request
    if takes_lengths:
        # Sequences of any length: a request's batch runs as it is, with its lengths (all its steps
        # when it sends none); the dynamic batcher would have to pad requests of other lengths.
        lengths = to_lengths(req.inputs.get("lengths"), images)
        return await asyncio.get_running_loop().run_in_executor(None, s.runner.logits, images, lengths)
    result: np.ndarray = await s.batcher.submit(images)
    return result


async def run_stream(s: Served, req: protocol.InferRequest, version: int | None = None) -> np.ndarray:
    p = req.parameters
    sequence = p.get("sequence_id")
    if sequence in (None, 0, "") or isinstance(sequence, bool) or not isinstance(sequence, int | str):
        raise protocol.ProtocolError(
            f"model {s.name!r} keeps each stream's state: give parameters.sequence_id (a non-zero integer "
            "or a string), with sequence_start on a stream's first request and sequence_end on its last"
        )
    first_row = p.get("sequence_row")  # the index of this request's first row: exact retries (streamtable.py)
    if first_row is not None and (isinstance(first_row, bool) or not isinstance(first_row, int) or first_row < 0):
        raise protocol.ProtocolError("parameters.sequence_row must be the index (>= 0) of the request's first row")
    rows = to_input(one_input(s, req), rank=2, arch=s.arch)
    start, end = bool(p.get("sequence_start")), bool(p.get("sequence_end"))
    result: np.ndarray = await s.batcher.submit(sequence, start, end, rows, first_row, version)
    return result
