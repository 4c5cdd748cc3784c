"""Training: the PyTorch model, its recipes, the training loop and checkpoints (needs torch).

The first stage of the pipeline train -> checkpoint -> export -> model file -> runtime -> bench;
it imports nothing from the later stages.
"""

from edge_lstm.training.checkpoint import load_model
from edge_lstm.training.loop import Reporter, SilentReporter, TrainResult, train
from edge_lstm.training.model import LSTMClassifier, ModelConfig, init_tutorial_, logits_of, to_float
from edge_lstm.training.recipes import TrainConfig, override, preset_config

__all__ = [
    "LSTMClassifier",
    "ModelConfig",
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
