"""A real Ray cluster of three nodes on this machine (Ray's own cluster utilities), on loopback.

Ray resolves "this machine" to the address of its default network interface; with
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (read when Ray is imported) it uses the loopback address, so
nothing here listens on or talks to another address (both variables are read when Ray starts).
CI installs the [ray] extra and sets
EDGE_LSTM_REQUIRE_RAY=1: there a missing Ray fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# All three "nodes" are this machine: a proxy that prefers replicas on its own node would send every
# request to the head's replica, and the tests want to see requests spread (a real cluster keeps it).
os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
if os.environ.get("EDGE_LSTM_REQUIRE_RAY"):
    import ray
ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.add_node(num_cpus=1)
    ray.init(address=c.address, namespace="edge_lstm", log_to_driver=False)
    yield c
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    c.shutdown()
