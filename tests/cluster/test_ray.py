"""`edge-lstm serve --ray` and `predict --ray` on a real three-node Ray cluster on loopback: the served
answers equal the runner's, replicas scale from one to two, a stream's rows spread over replicas
keep one state, a replica killed mid-traffic loses and duplicates nothing, and Ray Data's results
equal `predict`'s."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_lstm.bench.oip import binary_request, logits_of
from edge_lstm.cluster.ray_serve import Scaling, deploy, shutdown
from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.server import free_port

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def served(cluster: Any, exported: dict[str, Path], gru2: dict[str, Path]) -> Any:
    models = (("", exported["fp32"]), ("", exported["step"]), ("gru_step", gru2["step"]))  # a 2-layer GRU too
    config = ServeConfig(models=models, port=free_port("127.0.0.1"))
    url, names = deploy(config, Scaling(replicas=1, proxy_location="HeadOnly", proxy="python"), cluster.address)
    yield url, config
    shutdown(names, Scaling().store_shards)


def post(
    url: str, path: str, body: bytes, headers: dict[str, str], tries: int = 8
) -> tuple[bytes, dict[str, str], int]:
    """POST with retries on a 5xx or a dropped connection (a replica going away); (body, headers, tries used)."""
    for attempt in range(1, tries + 1):
        try:
            conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            conn.close()
            if r.status == 200:
                return data, {k.lower(): v for k, v in r.getheaders()}, attempt
            if r.status < 500:
                raise AssertionError(f"{r.status}: {data[:300]!r}")
        except (ConnectionError, http.client.HTTPException, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no answer after {tries} tries")


def classify(url: str, images: np.ndarray) -> tuple[np.ndarray, str]:
    body, headers = binary_request(images.astype(np.float32) / 255)
    data, h, _ = post(url, "/v2/models/edge_lstm/infer", body, headers)
    return logits_of(data, h.get("inference-header-content-length")), h["x-edge-lstm-replica"]


def stream_row(
    url: str, sid: int, t: int, row: np.ndarray, model: str = "edge_lstm_step"
) -> tuple[np.ndarray, str, int]:
    body = json.dumps(
        {
            "inputs": [{"name": "row", "shape": [1, 28], "datatype": "FP32", "data": row.tolist()}],
            "parameters": {"sequence_id": sid, "sequence_start": t == 0, "sequence_end": t == 27, "sequence_row": t},
        }
    ).encode()
    data, h, tries = post(url, f"/v2/models/{model}/infer", body, {})
    out = json.loads(data)["outputs"][0]
    return np.asarray(out["data"], np.float32).reshape(out["shape"]), h["x-edge-lstm-replica"], tries


def test_the_served_answers_equal_the_runners(served: Any, exported: dict, test_split: MnistSplit) -> None:
    url, _ = served
    x = test_split.images[:9]
    logits, _ = classify(url, x)
    np.testing.assert_allclose(logits, Classifier(exported["fp32"]).logits(x), atol=1e-6)


def test_scaling_to_two_replicas_spreads_requests(served: Any, cluster: Any, test_split: MnistSplit) -> None:
    from ray import serve

    url, config = served
    deploy(config, Scaling(replicas=2, proxy_location="HeadOnly", proxy="python"), cluster.address)
    status = serve.status().applications["edge_lstm"].deployments["edge_lstm_replica"]
    assert status.replica_states.get("RUNNING") == 2, status
    tags = {classify(url, test_split.images[i : i + 1])[1] for i in range(40)}
    assert len(tags) == 2, tags


def _four_streams(exported: dict, test_split: MnistSplit) -> tuple[np.ndarray, np.ndarray]:
    """Four test images as streams, and the runner's logits after each of their rows (4, 28, 10)."""
    images = test_split.images[:4].astype(np.float32) / 255
    local = StreamingClassifier(exported["step"], batch=4)
    return images, np.stack([local.push(images[:, t]) for t in range(28)], axis=1)


def test_a_streams_state_survives_its_rows_spread_over_replicas(
    served: Any, exported: dict, test_split: MnistSplit
) -> None:
    url, _ = served
    images, expected = _four_streams(exported, test_split)
    spread = 0
    for k in range(4):
        replicas = set()
        for t in range(28):
            logits, tag, _ = stream_row(url, 500 + k, t, images[k, t])
            replicas.add(tag)
            np.testing.assert_allclose(logits[0], expected[k, t], atol=1e-5)
        spread += len(replicas) > 1
    assert spread >= 1  # rows of one stream were answered by different replicas, from one state


def test_ids_reused_at_once_over_replicas(served: Any, exported: dict, test_split: MnistSplit) -> None:
    """Four sequences one after another on ONE id (END, then START with that id at once), their rows
    spread over the replicas: each equals the runner's, none continues the last one's state."""
    url, _ = served
    images, expected = _four_streams(exported, test_split)
    for k in range(4):
        for t in range(28):
            logits, _, _ = stream_row(url, 777, t, images[k, t])
            np.testing.assert_allclose(logits[0], expected[k, t], atol=1e-5)


def test_a_two_layer_gru_streams_over_replicas_as_the_runner(served: Any, gru2: dict, test_split: MnistSplit) -> None:
    url, _ = served
    images = test_split.images[4:6].astype(np.float32) / 255
    local = StreamingClassifier(gru2["step"], batch=2)
    expected = np.stack([local.push(images[:, t]) for t in range(28)], axis=1)
    for t in range(28):  # two sequences interleaved
        for k in range(2):
            logits, _, _ = stream_row(url, 600 + k, t, images[k, t], "gru_step")
            np.testing.assert_allclose(logits[0], expected[k, t], atol=1e-5)


def test_a_replica_killed_mid_traffic_loses_and_duplicates_nothing(
    served: Any, exported: dict, test_split: MnistSplit
) -> None:
    import ray

    url, _ = served
    images, expected = _four_streams(exported, test_split)
    reference = Classifier(exported["fp32"]).logits(test_split.images[:60])
    got_streams = np.zeros_like(expected)
    got_images = np.zeros_like(reference)
    retries = [0]

    def stream(k: int) -> None:
        for t in range(28):
            logits, _, tries = stream_row(url, 900 + k, t, images[k, t])
            got_streams[k, t] = logits[0]
            retries[0] += tries - 1

    def images_loop() -> None:
        for i in range(60):
            got_images[i] = classify(url, test_split.images[i : i + 1])[0][0]

    errors: list[BaseException] = []

    def guarded(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as e:  # a thread's failure must fail the test, not vanish with the thread
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(stream, k)) for k in range(4)]
    threads.append(threading.Thread(target=guarded, args=(images_loop,)))
    for th in threads:
        th.start()
    time.sleep(1.0)  # traffic is flowing
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True) if "edge_lstm_replica" in a["name"]]
    assert replicas, "no replica actor found"
    ray.kill(ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"]), no_restart=False)
    for th in threads:
        th.join(180)
    assert not errors, errors
    np.testing.assert_allclose(got_images, reference, atol=1e-5)  # every request answered, right
    np.testing.assert_allclose(got_streams, expected, atol=1e-5)  # no row lost, none applied twice


def test_ray_data_gives_predicts_answers(cluster: Any, exported: dict, test_split: MnistSplit, tmp_path: Path) -> None:
    import csv

    from edge_lstm.cluster.ray_data import BulkConfig, run
    from edge_lstm.runtime.predict import predict_files

    folder = tmp_path / "in"
    folder.mkdir()
    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    for p in samples.glob("*_*.*[gp]"):
        (folder / p.name).write_bytes(p.read_bytes())
    np.save(folder / "five.npy", test_split.images[:5])
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "results.csv"
    summary = run(BulkConfig(model=exported["fp32"], inputs=(str(folder),), out=out, actors=2, batch_size=3))
    rows = {r["source"]: r for r in csv.DictReader(out.open())}
    files = sorted(p for p in folder.iterdir())
    want = {p.source: p for p in predict_files(Classifier(exported["fp32"]), files)}
    assert rows.keys() == want.keys() and summary["rows"] == len(want) and summary["failed"] == 1
    for source, p in want.items():
        if p.error:
            assert rows[source]["error"] == p.error and rows[source]["label"] == "-1"
        else:
            assert (
                int(rows[source]["label"]) == p.label
                and abs(float(rows[source]["probability"]) - (p.probability or 0)) < 1e-5
            )
