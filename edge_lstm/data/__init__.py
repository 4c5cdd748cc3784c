"""The data every stage reads: MNIST (training, export verification, eval, bench, predict on IDX)
and a user's own labelled sequences (`train --data`, `eval --data`: .npz and UEA/UCR .ts files).

Needs numpy only, so the deployment side can use it without PyTorch.
"""

from edge_lstm.data.mnist import MnistSplit, load_idx, load_split, locate, parse_idx
from edge_lstm.data.sequences import SequenceSet

__all__ = ["MnistSplit", "SequenceSet", "load_idx", "load_split", "locate", "parse_idx"]
