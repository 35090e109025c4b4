"""Exceptions raised by ebcore: each says what was wrong and what to do about it."""


class EbcoreError(Exception):
    """Base class of every error ebcore raises on purpose."""


class UnsupportedModelError(EbcoreError, TypeError):
    """The model is not one of the supported Hugging Face families."""


class InvalidRatioError(EbcoreError, ValueError):
    """A pruning ratio outside [0, 1), or one that would empty a layer."""


class MaskMismatchError(EbcoreError, ValueError):
    """A mask does not fit the model (or another mask) it is used with."""


class PruningError(EbcoreError, RuntimeError):
    """Physical pruning did not produce the structure the mask asked for."""


class CheckpointError(EbcoreError, OSError):
    """A saved pruned model is missing, corrupt, or does not match its config."""


class DataNotFoundError(EbcoreError, FileNotFoundError):
    """An offline data set is missing; the message names the package that installs it."""
