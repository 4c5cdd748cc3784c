"""The Open Inference Protocol (KServe v2, what Triton, KServe and OpenVINO Model Server speak) over
HTTP: inference requests and responses as JSON tensors or with the binary tensor data extension
(what `tritonclient.http` sends by default), and model metadata. No HTTP here: bytes and dicts in,
bytes and dicts out; app.py wires them to routes.

Binary extension: the body is a JSON header of `Inference-Header-Content-Length` bytes followed by
the raw tensors (row-major, little-endian) of every input whose `parameters.binary_data_size` says
so, in the order the inputs are listed; outputs asked for with `parameters.binary_data` (or all, with
the request's `binary_data_output`) come back the same way.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_lstm import contract

# The protocol's datatypes this server takes, and their numpy types (little-endian on the wire).
DATATYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype("<f4"),
    "UINT8": np.dtype("u1"),
    "FP64": np.dtype("<f8"),
    "FP16": np.dtype("<f2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),  # a sequence model's lengths
}
NAMES = {v: k for k, v in DATATYPES.items()}
# The protocol's and Triton's extensions this server speaks (server metadata, HTTP and gRPC)
EXTENSIONS = ["binary_tensor_data", "sequence", "statistics", "classification", "model_repository"]


class ProtocolError(Exception):
    """A request the protocol (or the model's contract) does not allow: answered with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    parameters: dict[str, Any]
    outputs: dict[str, bool] | None  # name -> binary; None: every output
    binary_default: bool  # the request's binary_data_output
    # Triton's classification extension: output name -> the k best classes to answer instead of values
    classification: dict[str, int] = field(default_factory=dict)


@dataclass
class Tensor:
    name: str
    array: np.ndarray
    binary: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Content-Encoding gzip/deflate (tritonclient's request compression), bounded by `limit` bytes."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise ProtocolError(f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none", 415)
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise ProtocolError(f"the {encoding} body does not decompress ({e})") from None
    if len(out) > limit:
        raise ProtocolError(f"the decompressed body is over the {limit:,}-byte limit", 413)
    return out


def compress(body: bytes, accept: str | None) -> tuple[bytes, str | None]:
    """Compress a response as the client accepts (tritonclient's response compression)."""
    accept = accept or ""
    if "gzip" in accept:
        return gzip.compress(body, compresslevel=1), "gzip"
    if "deflate" in accept:
        return zlib.compress(body, 1), "deflate"
    return body, None


def tensor(spec: dict[str, Any], raw: bytes | None) -> np.ndarray:
    """One input tensor from its JSON description and, with the binary extension, its bytes."""
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if not isinstance(name, str):
        raise ProtocolError("every input needs a 'name'")
    if datatype not in DATATYPES:
        raise ProtocolError(
            f"input {name!r}: datatype {datatype!r} is not supported; use FP32 (or UINT8; INT32 for lengths)"
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError(f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r}")
    dtype, count = DATATYPES[datatype], math.prod(shape)
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise ProtocolError(
                f"input {name!r}: {len(raw)} bytes of binary data for shape {shape} of {datatype} "
                f"({count * dtype.itemsize} expected)"
            )
        return np.frombuffer(raw, dtype).reshape(shape)
    data = spec.get("data")
    if data is None:
        raise ProtocolError(f"input {name!r} has neither 'data' nor binary data")
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise ProtocolError(f"input {name!r}: 'data' must hold numbers of {datatype}") from None
    if array.size != count:
        raise ProtocolError(f"input {name!r}: {array.size} values for shape {shape} ({count} expected)")
    return array.reshape(shape)


def decode_infer(body: bytes, header_length: str | None) -> InferRequest:
    """An inference request's body (JSON, or JSON + binary tensors) -> its tensors and parameters."""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise ProtocolError(f"Inference-Header-Content-Length {header_length!r} is not a number") from None
        if not 0 < n <= len(body):
            raise ProtocolError(f"Inference-Header-Content-Length {n} does not fit a body of {len(body)} bytes")
        head, rest = body[:n], memoryview(body)[n:]
    else:
        head, rest = body, memoryview(b"")
    try:
        request = json.loads(head)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"the request is not valid JSON ({str(e)[:100]})") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise ProtocolError("an inference request is a JSON object with a non-empty 'inputs' list")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("'parameters' must be an object")
    inputs, offset = {}, 0
    for spec in request["inputs"]:
        if not isinstance(spec, dict):
            raise ProtocolError("each input is an object with name, shape, datatype and data")
        size = (spec.get("parameters") or {}).get("binary_data_size")
        raw = None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(rest):
                raise ProtocolError(f"input {spec.get('name')!r}: binary_data_size {size!r} runs past the body")
            raw, offset = bytes(rest[offset : offset + size]), offset + size
        array = tensor(spec, raw)
        if spec["name"] in inputs:
            raise ProtocolError(f"input {spec['name']!r} is given twice")
        inputs[spec["name"]] = array
    if offset != len(rest):
        raise ProtocolError(f"{len(rest) - offset} bytes of binary data belong to no input")
    outputs, classification = None, {}
    if isinstance(request.get("outputs"), list):
        outputs = {}
        for o in request["outputs"]:
            if isinstance(o, dict) and isinstance(o.get("name"), str):
                params = o.get("parameters") or {}
                outputs[o["name"]] = bool(params.get("binary_data", False))
                if "classification" in params:
                    classification[o["name"]] = classification_count(o["name"], params["classification"])
    request_id = request.get("id")
    return InferRequest(
        str(request_id) if request_id is not None else None,
        inputs,
        parameters,
        outputs,
        bool(parameters.get("binary_data_output", False)),
        classification,
    )


def classification_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProtocolError(f"output {name!r}: parameters.classification must be a count of classes >= 1")
    return value


def classify(values: np.ndarray, k: int, labels: tuple[str, ...]) -> np.ndarray:
    """Triton's classification extension: the k highest values of each row as "value:index:label" (BYTES),
    best first, in place of the values."""
    if k > values.shape[-1]:
        raise ProtocolError(f"parameters.classification {k} is more than the model's {values.shape[-1]} classes")
    order = np.argsort(-values, axis=-1, kind="stable")[..., :k]
    out = np.empty(order.shape, dtype=object)
    for index in np.ndindex(order.shape):
        c = int(order[index])
        out[index] = f"{values[(*index[:-1], c)]:f}:{c}:{labels[c]}".encode()
    return out


def bytes_tensor(array: np.ndarray) -> bytes:
    """A BYTES tensor on the wire: each element as its 4-byte little-endian length and its bytes."""
    return b"".join(len(b).to_bytes(4, "little") + b for b in array.ravel())


def encode_infer(
    model: str, request: InferRequest, outputs: list[Tensor], version: int = 1
) -> tuple[bytes, int | None]:
    """The response body and, when it carries binary tensors, its JSON header's length."""
    wanted = request.outputs
    entries, blobs = [], []
    for t in outputs:
        if wanted is not None and t.name not in wanted:
            continue
        binary = wanted[t.name] if wanted is not None else request.binary_default
        strings = t.array.dtype == object
        datatype = "BYTES" if strings else NAMES[t.array.dtype]
        entry: dict[str, Any] = {"name": t.name, "datatype": datatype, "shape": list(t.array.shape)}
        if binary:
            blob = bytes_tensor(t.array) if strings else np.ascontiguousarray(t.array).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob), **t.extra}
            blobs.append(blob)
        else:
            entry["data"] = [b.decode() for b in t.array.ravel()] if strings else t.array.ravel().tolist()
            if t.extra:
                entry["parameters"] = dict(t.extra)
        entries.append(entry)
    response: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": entries}
    if request.id is not None:
        response["id"] = request.id
    head = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def metadata(
    name: str,
    spec: contract.ModelSpec,
    classes: tuple[str, ...] = (),
    platform: str = "onnxruntime_onnx",
    versions: tuple[int, ...] = (1,),
) -> dict[str, Any]:
    """`GET /v2/models/{name}`: the model's inputs and outputs from the contract (-1: the batch axis), and
    the names of its classes in the order of the logits (`parameters.classes`: the protocol's metadata has
    no field for them; JSON clients ignore what they do not know)."""

    def one(t: contract.TensorSpec) -> dict[str, Any]:
        datatype = "INT32" if t.dtype == "int32" else "FP32"
        return {"name": t.name, "datatype": datatype, "shape": [-1 if isinstance(d, str) else d for d in t.dims]}

    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": [one(t) for t in spec.inputs],
        "outputs": [one(t) for t in spec.outputs],
        **({"parameters": {"classes": list(classes)}} if classes else {}),
    }
