"""Exceptions raised by ebcore: each says what was wrong and what to do about it."""


class EbcoreError(Exception):
    """Base class of every error ebcore raises on purpose."""


class InvalidArgumentError(EbcoreError, ValueError, TypeError):
    """An argument of a public function has the wrong type or value; the message names the argument,
    the value received and what to pass instead. (Also a ValueError and a TypeError, so callers that
    caught those keep working.)"""


class UnsupportedModelError(EbcoreError, TypeError):
    """The model is not one of the supported Hugging Face families."""


class InvalidRatioError(InvalidArgumentError):
    """A pruning ratio that is not a number in [0, 1), or one that would empty a layer."""


class MaskMismatchError(EbcoreError, ValueError):
    """A mask does not fit the model (or another mask) it is used with."""


class PruningError(EbcoreError, RuntimeError):
    """Physical pruning did not produce the structure the mask asked for."""


class CheckpointError(EbcoreError, OSError):
    """A saved pruned model is missing, corrupt, or does not match its config."""


class CheckpointExistsError(CheckpointError, FileExistsError):
    """The target folder of a save is not empty and overwriting was not asked for."""


class NotPortableError(EbcoreError, ValueError):
    """A pruned model that a stock Hugging Face config cannot describe (uneven widths, or a head count the
    family's config cannot express); the message names the layer, the width and what would work."""


def describe(value: object) -> str:
    """`value` for an error message: its repr (shortened) and its type."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(value).__name__})"
