"""Export: a trained checkpoint -> self-contained, verified model files (needs torch).

Modules: `graph_build` (the model's ONNX graphs from its weights, every cell and depth), `graph` (a
fixed batch, the contract check, metadata), `targets` (the table of targets: how each file is built,
verified and refused), `variants` (int8, fp16, ORT format), `mobile` (the unrolled phone-NPU graph),
`tflite` (onnx2tf), `triton` (a Triton model repository), `verify` (a file's engine vs PyTorch),
`pipeline` (the `edge-lstm export` command's job).
"""

from edge_lstm.export.graph_build import classifier_graph, step_graph
from edge_lstm.export.pipeline import Artifact, ExportConfig, PartialExport, export
from edge_lstm.export.targets import TARGETS
from edge_lstm.export.variants import variant_path

__all__ = [
    "TARGETS",
    "Artifact",
    "ExportConfig",
    "PartialExport",
    "classifier_graph",
    "export",
    "step_graph",
    "variant_path",
]
