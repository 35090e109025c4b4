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

    Continuing a longer run (the study's ``continue`` mode: a pruned ticket follows the dense run's schedule):

    * ``max_steps``: stop after this many optimizer steps of this call (the last epoch may be partial);
      ``None``: ``epochs * steps_per_epoch``. The call's steps are the smaller of the two.
    * ``schedule_steps``: length in steps of the LR schedule (warm-up + cosine); ``None``: this call's
      steps. The warm-up lasts ``round(warmup_fraction * schedule_steps)`` steps.
    * ``schedule_start``: the step of that schedule at which this call starts (its first LR is
      ``lr * lr_factor(schedule_start)``); ``schedule_start`` + this call's steps must be <= ``schedule_steps``
      (checked here where the numbers are known, else by :func:`train`).
    * ``first_epoch``: the epoch whose data order this call's first epoch uses (each epoch's shuffle is
      seeded from ``(seed, first_epoch + i)``), so a continuation from an epoch boundary sees the data in the
      order the longer run would have.
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
    max_steps: int | None = None
    schedule_steps: int | None = None
    schedule_start: int = 0
    first_epoch: int = 0

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
        problems += self._continuation_problems(is_int)
        if problems:
            raise ValueError("Invalid TrainConfig: " + "; ".join(problems))
        # Plain python numbers, so the config stores cleanly in checkpoints.
        for name in ("epochs", "batch_size", "seed", "num_workers", "eval_batch_size", "check_every_steps",
                     "max_steps", "schedule_steps", "schedule_start", "first_epoch"):
            if getattr(self, name) is not None:
                setattr(self, name, int(getattr(self, name)))
        for name in ("lr", "weight_decay", "warmup_fraction", "grad_clip"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))

    def _continuation_problems(self, is_int: Any) -> list[str]:
        """What is wrong with ``max_steps``, ``schedule_steps``, ``schedule_start``, ``first_epoch``."""
        problems = []
        if self.max_steps is not None and (not is_int(self.max_steps) or self.max_steps < 1):
            problems.append(f"max_steps must be None or an integer >= 1, got {self.max_steps!r}")
        if self.schedule_steps is not None and (not is_int(self.schedule_steps) or self.schedule_steps < 1):
            problems.append(f"schedule_steps must be None or an integer >= 1, got {self.schedule_steps!r}")
        if not is_int(self.schedule_start) or self.schedule_start < 0:
            problems.append(f"schedule_start must be an integer >= 0, got {self.schedule_start!r}")
        if not is_int(self.first_epoch) or self.first_epoch < 0:
            problems.append(f"first_epoch must be an integer >= 0, got {self.first_epoch!r}")
        if problems:
            return problems
        if self.schedule_start > 0 and self.schedule_steps is None:
            problems.append(f"schedule_start={self.schedule_start} needs schedule_steps (the length of the whole "
                            "schedule): without it the schedule is this call's own steps, which start at 0")
        elif self.schedule_steps is not None:
            left = self.schedule_steps - self.schedule_start
            if self.max_steps is not None and self.max_steps > left:
                problems.append(f"schedule_start + max_steps ({self.schedule_start} + {self.max_steps}) must be <= "
                                f"schedule_steps ({self.schedule_steps}): the call would run past the schedule's end")
            elif left < 1:
                problems.append(f"schedule_start ({self.schedule_start}) must be < schedule_steps "
                                f"({self.schedule_steps}): no step of the schedule is left to train")
        return problems

    def call_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of one :func:`train` call: ``epochs * steps_per_epoch``, capped by ``max_steps``.
        ValueError when they run past the schedule's end (``schedule_start + steps > schedule_steps``)."""
        steps = self.epochs * steps_per_epoch
        if self.max_steps is not None:
            steps = min(steps, self.max_steps)
        if self.schedule_steps is not None and self.schedule_start + steps > self.schedule_steps:
            raise ValueError(
                f"Invalid TrainConfig: schedule_start + this call's steps ({self.schedule_start} + {steps}: "
                f"{self.epochs} epochs of {steps_per_epoch} steps"
                + (f", max_steps {self.max_steps}" if self.max_steps is not None else "")
                + f") must be <= schedule_steps ({self.schedule_steps}): the call would run past the schedule's "
                "end; lower epochs or set max_steps")
        return steps

    def schedule_length(self, call_steps: int) -> int:
        """Length of the LR schedule in steps: ``schedule_steps``, or this call's steps when it is None."""
        return self.schedule_steps if self.schedule_steps is not None else call_steps


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
