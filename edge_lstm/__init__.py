"""edge-lstm: train, export, run and benchmark an LSTM MNIST classifier for edge devices.

The package root stays import-light (no torch, no onnxruntime) so that `edge-lstm --help`
is instant and the deployment side never pulls in PyTorch.
"""

__version__ = "0.1.0"
