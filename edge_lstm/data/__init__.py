"""MNIST: the data every stage reads (training, export verification, eval, bench, predict on IDX).

Needs numpy only, so the deployment side can use it without PyTorch.
"""

from edge_lstm.data.mnist import MnistSplit, load_idx, load_split, locate, parse_idx

__all__ = ["MnistSplit", "load_idx", "load_split", "locate", "parse_idx"]
