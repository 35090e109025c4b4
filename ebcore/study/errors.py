"""Errors of the study (the notebooks, run_all.sh and `python -m ebcore`), apart from the library's
(ebcore.errors): each says what was wrong and what to do about it."""
from __future__ import annotations

from ..errors import EbcoreError


class UsageError(EbcoreError, ValueError):
    """The command line or a notebook parameter was used wrongly (unknown name, bad value); exit status 2."""


class SettingsError(UsageError):
    """One experiment setting is invalid: the message names the field, the value and the valid range."""


class DataNotFoundError(EbcoreError, FileNotFoundError):
    """An offline data set is missing; the message names the package that installs it."""


class DeviceUnavailableError(EbcoreError, RuntimeError):
    """The requested device (e.g. CUDA) is not available on this machine."""
