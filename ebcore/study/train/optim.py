"""The optimizer of the training loop: AdamW with two weight-decay groups, and a linear warm-up then
cosine decay to 0 of the learning rate, per optimizer step; optionally started from a given state
(by parameter name, e.g. a dense run's AdamW moments sliced through a prune by `ebcore.optim_state`)."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from .config import TrainConfig


def warmup_steps_for(config: TrainConfig, total_steps: int) -> int:
    """Number of linear warm-up steps: ``round(warmup_fraction * total_steps)``."""
    return int(round(config.warmup_fraction * total_steps))


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the base LR at optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then cosine
    decay from 1 down to 0, which is reached at ``step == total_steps``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _no_decay(name: str, param: nn.Parameter) -> bool:
    lowered = name.lower()
    return param.ndim <= 1 or lowered.endswith(".bias") or "layernorm" in lowered or "layer_norm" in lowered


def build_optimizer(
    model: nn.Module, config: TrainConfig, total_steps: int, start_step: int = 0
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW plus a warm-up + cosine ``LambdaLR`` over ``total_steps`` optimizer steps.

    Two parameter groups, always in this order: [with weight decay, without weight decay]; biases,
    LayerNorm parameters and every 1-D parameter get no weight decay. Parameters with
    ``requires_grad=False`` are left out. ``start_step`` places the schedule at that global step,
    so the first LR is ``lr * lr_factor(start_step)``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= start_step <= total_steps:
        raise ValueError(f"start_step must be in [0, total_steps={total_steps}], got {start_step}")
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if _no_decay(name, param) else decay).append(param)
    if not decay and not no_decay:
        raise ValueError("The model has no trainable parameters.")
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    warmup = warmup_steps_for(config, total_steps)

    def schedule(step: int) -> float:
        return lr_factor(step, warmup, total_steps)

    if start_step == 0:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    else:
        for group in optimizer.param_groups:
            group["initial_lr"] = config.lr
        # LambdaLR takes one step on construction: last_epoch becomes start_step.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule, last_epoch=start_step - 1)
    return optimizer, scheduler


def load_named_state(optimizer: torch.optim.Optimizer, model: nn.Module, named: Mapping[str, dict]) -> None:
    """Start `optimizer` (built by :func:`build_optimizer` for `model`) from `named`: optimizer state per
    parameter name (``{"exp_avg": ..., "exp_avg_sq": ..., "step": ...}``), as
    ``ebcore.optim_state.ParameterSlices.slice_named(named_optimizer_state(dense_opt, dense_model))`` gives
    for a model pruned since. Loaded through ``load_state_dict``, so tensors move to each parameter's device
    and dtype (copies: `named` is never changed); parameters not named keep an empty state. ValueError for an
    unknown name, a parameter the optimizer does not train, or a tensor whose shape is not its parameter's."""
    params = dict(model.named_parameters())
    index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    state_dict = optimizer.state_dict()
    for name, state in named.items():
        if name not in params or id(params[name]) not in index:
            raise ValueError(f"optimizer_state names {name!r}, which is not a trainable parameter of the model "
                             f"(it has {len(params)} parameters, e.g. {next(iter(params), None)!r})")
        shape = params[name].shape
        bad = [k for k, v in state.items() if torch.is_tensor(v) and v.dim() > 0 and v.shape != shape]
        if bad:
            raise ValueError(f"optimizer_state[{name!r}][{bad[0]!r}] has shape {tuple(state[bad[0]].shape)}, the "
                             f"parameter {tuple(shape)}: slice the state to the pruned model (ebcore.optim_state)")
        # copies: AdamW updates its state in place, and the caller's tensors must stay as they were
        state_dict["state"][index[id(params[name])]] = {k: v.clone() if torch.is_tensor(v) else v
                                                        for k, v in state.items()}
    optimizer.load_state_dict(state_dict)
