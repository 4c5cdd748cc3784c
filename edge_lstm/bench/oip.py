"""A lean Open Inference Protocol client for `bench URL`: any KServe v2 server (edge-lstm serve,
Triton, KServe) is measured like a model file. Requests are encoded ONCE, with the binary tensor
extension (what tritonclient sends by default), and sent over one persistent connection with the
standard library's http.client: the client's own cost per request stays small and fixed, and the
bench process needs no other dependency.
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edge_lstm.errors import ConfigError, ProviderError


@dataclass(frozen=True)
class Endpoint:
    url: str  # as given
    host: str
    port: int
    model: str
    token: str | None = None

    @property
    def infer_path(self) -> str:
        return f"/v2/models/{self.model}/infer"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def parse_url(url: str, token: str | None = None) -> Endpoint:
    """http://HOST:PORT/v2/models/NAME -> an Endpoint (the token from $EDGE_LSTM_TOKEN when not given)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "http" or len(segments) < 3 or segments[:2] != ["v2", "models"] or not parts.hostname:
        raise ConfigError(
            f"{url}: expected http://HOST:PORT/v2/models/NAME "
            "(an Open Inference Protocol model; https is not supported)"
        )
    return Endpoint(url, parts.hostname, parts.port or 80, segments[2], token or os.environ.get("EDGE_LSTM_TOKEN"))


def binary_request(images: np.ndarray, name: str = "images") -> tuple[bytes, dict[str, str]]:
    """(B, 28, 28) float32 (a sequence model's input `name`: (B, T, F)) -> the body and headers of
    one inference request with binary tensors."""
    x = np.ascontiguousarray(images, dtype="<f4")
    head = json.dumps(
        {
            "inputs": [
                {"name": name, "shape": list(x.shape), "datatype": "FP32", "parameters": {"binary_data_size": x.nbytes}}
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return head + x.tobytes(), headers


def logits_of(body: bytes, header_length: str | None) -> np.ndarray:
    """The logits of an inference response (binary or JSON)."""
    n = int(header_length) if header_length else len(body)
    response = json.loads(body[:n])
    out = next(o for o in response["outputs"] if o["name"] == "logits")
    if "data" in out:
        return np.asarray(out["data"], np.float32).reshape(out["shape"])
    return np.frombuffer(body[n:], "<f4").reshape(out["shape"])


class Client:
    """One persistent connection; `infer(body, headers)` sends a prepared request and returns the
    response body (raising on anything but 200)."""

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self.conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path, headers=self.endpoint.headers())
            r = self.conn.getresponse()
            return r.status, r.read()
        except OSError as e:
            self.conn.close()
            raise ProviderError(f"{self.endpoint.url}: cannot reach the server ({e.strerror or e})") from None

    def metadata(self) -> dict[str, Any]:
        """The model's metadata, checked: a classifier taking images (B, 28, 28), or sequences (B, T, F)
        (a model of own data; T -1 where it takes any length, then with `lengths`), giving logits."""
        status, body = self.get(f"/v2/models/{self.endpoint.model}")
        if status != 200:
            raise ProviderError(
                f"{self.endpoint.url}: the server answered {status}: {body[:200].decode(errors='replace')}"
            )
        meta: dict[str, Any] = json.loads(body)
        inputs = {i["name"]: i.get("shape") for i in meta.get("inputs", [])}
        sequences = list(inputs) in (["sequences"], ["sequences", "lengths"]) and len(inputs["sequences"] or []) == 3
        if not sequences and (list(inputs) != ["images"] or (inputs["images"] or [None])[1:] != [28, 28]):
            raise ProviderError(
                f"{self.endpoint.url}: not an edge-lstm classifier (inputs {inputs}); "
                "bench takes images (B, 28, 28) or sequences (B, T, F)"
            )
        return meta

    def infer(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, str | None]:
        self.conn.request("POST", self.endpoint.infer_path, body=body, headers={**headers, **self.endpoint.headers()})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise ProviderError(
                f"{self.endpoint.url}: the server answered {r.status}: {data[:200].decode(errors='replace')}"
            )
        return data, r.getheader("Inference-Header-Content-Length")

    def close(self) -> None:
        self.conn.close()
