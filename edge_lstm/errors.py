"""The library's exceptions. The CLI turns each into one line on stderr and a non-zero exit."""


class EdgeLstmError(Exception):
    """Base class: anything the user can fix (bad input, missing files, impossible options)."""


class DataError(EdgeLstmError):
    """A dataset file is missing, corrupted, truncated or not what it claims to be."""


class DownloadError(DataError):
    """Fetching MNIST from the mirrors failed; nothing was left in the cache."""


class CheckpointError(EdgeLstmError):
    """A checkpoint is missing, corrupted, foreign or of another architecture."""


class ConfigError(EdgeLstmError):
    """An option value is impossible (a negative learning rate, a batch of 0, ...)."""


class ModelFileError(EdgeLstmError):
    """An .onnx/.ort file is missing, truncated, not ONNX, or breaks the model contract."""


class ExportError(EdgeLstmError):
    """Export failed or the exported model did not pass verification."""


class ProviderError(EdgeLstmError):
    """An execution provider is unknown, not installed, or silently fell back to another one."""


class InputError(EdgeLstmError):
    """Input images have the wrong shape, dtype or value range, or cannot be decoded."""


class TrainingInterrupted(EdgeLstmError):
    """Ctrl-C during training: the last complete epoch's checkpoint is kept for --resume."""
