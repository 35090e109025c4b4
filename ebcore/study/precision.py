"""Mixed precision for the study's training loop: autocast contexts and the fp16 grad scaler.

Three precisions (``PRECISIONS``):

* ``"fp32"`` -- no autocast, plain float32 (the default; bitwise deterministic on CPU).
* ``"bf16"`` -- ``torch.autocast(dtype=torch.bfloat16)`` on CUDA and on CPU; weights, gradients and
  AdamW state stay float32 (autocast casts per op), no scaler is needed (bf16 has fp32's range).
* ``"fp16"`` -- ``torch.autocast(dtype=torch.float16)`` plus a ``torch.amp.GradScaler``; CUDA only
  (the CPU has no fast fp16 matmuls, and the study never trains fp16 on CPU), so fp16 on CPU raises
  :class:`PrecisionError`.

    check_precision("bf16", torch.device("cpu"))            # -> "bf16"
    with autocast("bf16", device):
        loss = model(**batch).loss
    scaler = make_grad_scaler("fp16", device)               # None unless fp16
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from ..errors import EbcoreError

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(EbcoreError, ValueError):
    """An unknown precision, or one the device cannot train in (fp16 on CPU)."""


def check_precision(precision: str, device: torch.device | str | None = None) -> str:
    """Return ``precision`` if it is one of ``PRECISIONS`` and usable on ``device``; else raise.

    ``device=None`` checks only the name (used where the device is not known yet).
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise PrecisionError(
            f"precision must be one of {PRECISIONS}, got {precision!r}: use 'fp32' (default), "
            "'bf16' (CPU or CUDA) or 'fp16' (CUDA only, with a grad scaler).")
    if device is not None:
        device = torch.device(device)
        if precision == "fp16" and device.type != "cuda":
            raise PrecisionError(
                f"precision='fp16' needs a CUDA device, got device {str(device)!r}: fp16 autocast with a "
                "grad scaler is supported on GPUs only. Use precision='bf16' (or 'fp32') on the CPU.")
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision (``None`` for fp32)."""
    return _DTYPES.get(check_precision(precision))


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """An autocast context for ``precision`` on ``device`` (a no-op context for fp32)."""
    device = torch.device(device)
    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def make_grad_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler | None:
    """A ``GradScaler`` for fp16 (on CUDA), ``None`` for fp32 and bf16."""
    device = torch.device(device)
    check_precision(precision, device)
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
