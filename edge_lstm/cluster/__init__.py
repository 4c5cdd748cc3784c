"""Past one machine, on engines people already run: `edge-lstm serve` as a Ray Serve deployment
(ray_serve.py: replicas of the same app on Ray's HAProxy fast path; affinity.py: streams' states in
the replica a header routes them to, committed to shared store actors) and bulk classification with
Ray Data (ray_data.py). Triton (the real server, its repositories) is edge_lstm/triton/. Needs the
`[ray]` extra; imports Ray only when used.
"""

from edge_lstm.cluster.ray_data import BulkConfig
from edge_lstm.cluster.ray_serve import Scaling

__all__ = ["BulkConfig", "Scaling"]
