"""Training: the PyTorch model, its recipes, the one training loop for every data set, checkpoints (needs torch).

The first stage of the pipeline train -> checkpoint -> export -> model file -> runtime -> bench;
it imports nothing from the later stages.
"""

from edge_lstm.training.checkpoint import load_model
from edge_lstm.training.finish import TrainResult
from edge_lstm.training.loop import Reporter, SilentReporter, train
from edge_lstm.training.model import RecurrentClassifier, init_tutorial_, logits_of, to_float
from edge_lstm.training.recipes import TrainConfig, override, preset_config

__all__ = [
    "RecurrentClassifier",
    "Reporter",
    "SilentReporter",
    "TrainConfig",
    "TrainResult",
    "init_tutorial_",
    "load_model",
    "logits_of",
    "override",
    "preset_config",
    "to_float",
    "train",
]
