"""The `model.py` files that run inside Triton's Python backend (copied into a repository, not imported
by edge-lstm itself): they need numpy and onnxruntime in Triton's Python, nothing of edge-lstm."""
