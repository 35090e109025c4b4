"""Hyper-parameters of the training loop (:class:`TrainConfig`, validated on construction) and the
choice of device (:func:`pick_device`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import DeviceUnavailableError
from ..precision import PRECISIONS


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    ``check_every_steps``: when set, ``Callback.on_check`` fires after every N-th optimizer step
    (counted globally over the run); ``on_epoch_end`` fires at epoch ends either way.
    ``device``: ``None``/``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    ``eval_batch_size``: defaults to ``batch_size``.
    ``precision``: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (CUDA only); see :mod:`ebcore.study.precision`.
    ``description``: what the progress bars name the run by (family, run, seed, ratio); no effect on training.
    """

    epochs: int
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    grad_clip: float | None = 1.0
    seed: int = 0
    eval_batch_size: int | None = None
    check_every_steps: int | None = None
    num_workers: int = 0
    progress: bool = True
    device: str | None = None
    precision: str = "fp32"
    description: str = ""

    def __post_init__(self) -> None:
        def is_int(x: Any) -> bool:
            return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

        def is_num(x: Any) -> bool:
            return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)

        problems = []
        if not is_int(self.epochs) or self.epochs < 1:
            problems.append(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not is_int(self.batch_size) or self.batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not is_num(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            problems.append(f"lr must be a finite number > 0, got {self.lr!r}")
        if not is_num(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            problems.append(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        if not is_num(self.warmup_fraction) or not 0 <= self.warmup_fraction <= 1:
            problems.append(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction!r}")
        if self.grad_clip is not None and (not is_num(self.grad_clip) or not self.grad_clip > 0):
            problems.append(f"grad_clip must be None or a number > 0, got {self.grad_clip!r}")
        if not is_int(self.seed) or self.seed < 0:
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.eval_batch_size is not None and (not is_int(self.eval_batch_size) or self.eval_batch_size < 1):
            problems.append(f"eval_batch_size must be None or an integer >= 1, got {self.eval_batch_size!r}")
        if self.check_every_steps is not None and (
            not is_int(self.check_every_steps) or self.check_every_steps < 1
        ):
            problems.append(f"check_every_steps must be None or an integer >= 1, got {self.check_every_steps!r}")
        if not is_int(self.num_workers) or self.num_workers < 0:
            problems.append(f"num_workers must be an integer >= 0, got {self.num_workers!r}")
        if self.device is not None and not isinstance(self.device, str):
            problems.append(f"device must be None or a string like 'cpu'/'cuda'/'auto', got {self.device!r}")
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        elif self.precision == "fp16" and self.device == "cpu":
            problems.append("precision='fp16' needs a CUDA device but device='cpu': use precision='bf16' or 'fp32' on CPU")
        if not isinstance(self.description, str):
            problems.append(f"description must be a string, got {self.description!r}")
        if problems:
            raise ValueError("Invalid TrainConfig: " + "; ".join(problems))
        # Plain python numbers, so the config stores cleanly in checkpoints.
        for name in ("epochs", "batch_size", "seed", "num_workers", "eval_batch_size", "check_every_steps"):
            if getattr(self, name) is not None:
                setattr(self, name, int(getattr(self, name)))
        for name in ("lr", "weight_decay", "warmup_fraction", "grad_clip"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))


def pick_device(preference: str | None = None) -> torch.device:
    """Return the device to train on.

    ``None`` or ``"auto"``: CUDA when available, else CPU. ``"cpu"``: CPU. ``"cuda"``/``"cuda:N"``:
    that GPU, or :class:`DeviceUnavailableError` when CUDA is not available.
    """
    if preference is None or preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError as exc:
        raise ValueError(f"Unknown device {preference!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"Device {preference!r} was requested but CUDA is not available on this machine "
                "(no GPU, or torch was built without CUDA). Use device='cpu' or 'auto'."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"Device {preference!r} was requested but only {torch.cuda.device_count()} GPU(s) exist."
            )
    elif device.type != "cpu":
        raise ValueError(f"Unsupported device {preference!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    return device
