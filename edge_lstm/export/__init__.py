"""Export: a trained checkpoint -> self-contained, verified model files (needs torch and onnxscript).

Modules: `modules` (what gets exported), `onnx_export` (torch -> ONNX), `graph` (passes and the
contract check), `variants` (int8, fp16, ORT format), `verify` (onnxruntime vs PyTorch),
`pipeline` (the `edge-lstm export` command's job).
"""

from edge_lstm.export.modules import FullSequence, Step, fuse_input_layer
from edge_lstm.export.onnx_export import quiet_export, to_onnx
from edge_lstm.export.pipeline import Artifact, ExportConfig, export
from edge_lstm.export.variants import variant_path

__all__ = [
    "Artifact",
    "ExportConfig",
    "FullSequence",
    "Step",
    "export",
    "fuse_input_layer",
    "quiet_export",
    "to_onnx",
    "variant_path",
]
