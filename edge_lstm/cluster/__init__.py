"""Past one machine, on engines people already run: `edge-lstm serve` as a Ray Serve deployment
(ray_serve.py: replicas of the same app, streams' states in shared store actors) and bulk
classification with Ray Data (ray_data.py). A Triton model repository is written by export
(export/triton.py). Needs the `[ray]` extra; imports Ray only when used.
"""

from edge_lstm.cluster.ray_data import BulkConfig
from edge_lstm.cluster.ray_serve import Scaling

__all__ = ["BulkConfig", "Scaling"]
