"""Runtime: model files in onnxruntime on any execution provider (numpy and onnxruntime only, never torch).

`Classifier` (whole images) and `StreamingClassifier` (one row at a time) are the runners users
embed; `SessionConfig` says how; `providers` is the registry of execution providers. `predict`,
`evaluate` and `model_info` are the jobs of the `predict`, `eval` and `inspect` commands.
"""

from edge_lstm.runtime.classifier import Classifier, auto_threads
from edge_lstm.runtime.inputs import softmax, to_input
from edge_lstm.runtime.placement import check_placement
from edge_lstm.runtime.session import SessionConfig
from edge_lstm.runtime.streaming import StreamingClassifier

__all__ = [
    "Classifier",
    "SessionConfig",
    "StreamingClassifier",
    "auto_threads",
    "check_placement",
    "softmax",
    "to_input",
]
