"""What the training loop shares with its callbacks (:class:`TrainState`, :class:`Callback`) and what it
returns (:class:`TrainResult`, with one row of ``HISTORY_COLUMNS`` per epoch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from .config import TrainConfig

HISTORY_COLUMNS = (
    "epoch", "train_loss", "val_loss", "val_accuracy", "lr",
    "epoch_seconds", "cumulative_seconds", "step",
)


@dataclass
class TrainState:
    """What the loop exposes to callbacks. ``epoch`` is the 0-based index of the current (or just
    finished) epoch; ``global_step`` counts optimizer steps taken so far; ``history`` holds one dict
    per finished epoch (same columns as :attr:`TrainResult.history`), already including the epoch
    that ``on_epoch_end`` is called for; ``last_eval`` is that epoch's validation result (``{}``
    without validation data); ``samples_seen`` counts the training samples of the steps taken so far
    (-1 only briefly, after restoring a checkpoint that predates the count); ``total_steps`` is the
    number of steps this call takes (``TrainConfig.call_steps``)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    epoch: int
    global_step: int
    steps_per_epoch: int
    total_steps: int
    history: list[dict[str, Any]]
    device: torch.device
    config: TrainConfig
    stop_training: bool = False
    grad_scaler: torch.amp.GradScaler | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    samples_seen: int = 0


class Callback:
    """Base class of training callbacks; every hook is a no-op by default.

    Order per run: ``on_resume`` (only when resuming from a checkpoint), ``on_train_start``, then
    per optimizer step ``on_step_end`` and, every ``check_every_steps`` steps, ``on_check``; per
    epoch (after validation, so ``state.last_eval`` is fresh) ``on_epoch_end``; then the checkpoint
    is written; finally ``on_train_end``.

    A hook may set ``state.stop_training = True`` (the loop stops after that hook; a stop during an
    epoch still evaluates and records the partial epoch, but writes no checkpoint for it).

    ``state_dict``/``load_state_dict`` save and restore the callback's own state in checkpoints
    (store only tensors and plain python values). ``on_resume`` runs after ``load_state_dict`` and
    before the model weights, optimizer and RNG states are loaded.
    """

    def on_resume(self, state: TrainState) -> None: ...
    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_check(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class TrainResult:
    """Outcome of :func:`train`. ``history`` has one row per epoch (``epoch`` is 0-based and
    ``step`` is the global step at that epoch's end; ``lr`` is the LR used by the epoch's last
    step; ``cumulative_seconds`` adds up across resumed runs, while ``total_seconds`` is this call's
    wall time). ``peak_memory_kind`` is ``"cuda_max_allocated"`` (``torch.cuda.max_memory_allocated``
    during this call) or ``"cpu_max_rss"`` (the process's lifetime peak resident set size, in
    bytes, from ``resource.getrusage``; ``"unavailable"`` where that module is missing). ``samples_seen``:
    training samples of all optimizer steps taken (across resumed runs; exact for a partial last epoch)."""

    model: nn.Module
    history: pd.DataFrame
    total_seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str
    stopped_early: bool
    samples_seen: int = 0
