"""The dense run's optimizer state at a ticket, for the study's `continue` retrain mode: the watcher of the
dense run (ebcore.study.dense_watch) writes AdamW's state by parameter name next to the ticket's weights,
with the global step it was taken at; the pruned run reads it back, sliced to the kept weights, and starts
its AdamW from it (`train(..., optimizer_state=...)`), so "continue" carries on the dense run's training.

    save_optimizer_state(path, state.optimizer, state.model, state.global_step, state.steps_per_epoch)

    model.load_state_dict(load_file(ticket_weights))       # the dense model at the ticket
    carried = load_ticket_optimizer_state(path, model, mask)  # before pruning
    prune_model(model, mask)
    train(model, data, config, optimizer_state=carried)

The file is safetensors: one tensor per parameter and state entry, named ``<parameter>/<entry>``
(``vit.encoder.layer.0.output.dense.weight/exp_avg``; ``step`` as a 0-d tensor), and the metadata
``format``, ``global_step`` and ``steps_per_epoch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import CheckpointError
from ..files import atomic_save
from ..masks import Mask
from ..optim_state import ParameterSlices, named_optimizer_state

FORMAT = "ebcore.ticket-optimizer/1"
_RETRAIN = "delete the dense run's folder to retrain it (it rewrites the ticket files), or use mode 'scratch'"


@dataclass
class TicketOptimizerState:
    """What a ticket's optimizer file holds: AdamW's state by parameter name of the dense model (CPU
    tensors), the global step of the dense run when it was saved, and that run's steps per epoch."""

    named: dict[str, dict[str, torch.Tensor]]
    global_step: int
    steps_per_epoch: int


def save_optimizer_state(path: str | Path, optimizer: Any, model: nn.Module, global_step: int,
                         steps_per_epoch: int) -> Path:
    """Write `optimizer`'s state by `model`'s parameter names (copies on the CPU) and the global step to
    `path`, atomically. Parameters without state (never stepped) are left out; a scalar that is not a
    tensor (a step count as a float) is stored as a 0-d tensor."""
    tensors: dict[str, torch.Tensor] = {}
    for name, state in named_optimizer_state(optimizer, model).items():
        for key, value in state.items():
            if "/" in key:
                raise ValueError(f"optimizer state entry {key!r} of {name} holds '/', the file's separator")
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{name}/{key}"] = tensor.detach().to("cpu", copy=True).contiguous()
    metadata = {"format": FORMAT, "global_step": str(int(global_step)), "steps_per_epoch": str(int(steps_per_epoch))}
    return atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_ticket_optimizer(path: str | Path) -> TicketOptimizerState:
    """The state written by :func:`save_optimizer_state`; CheckpointError (naming the file and what to do)
    when it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: mode 'continue' needs the dense run's optimizer state saved "
                              f"when the ticket appeared (a dense run from before it was saved, or a cleaned "
                              f"folder); {_RETRAIN}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}, expected {FORMAT!r}")
        global_step, steps_per_epoch = int(metadata["global_step"]), int(metadata["steps_per_epoch"])
    except Exception as exc:
        raise CheckpointError(f"{path} could not be read as a ticket's optimizer state ({type(exc).__name__}: "
                              f"{exc}); it is damaged: {_RETRAIN}") from exc
    named: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        name, sep, entry = key.rpartition("/")
        if not sep:
            raise CheckpointError(f"{path} holds {key!r}, not a '<parameter>/<entry>' name; it is damaged: {_RETRAIN}")
        named.setdefault(name, {})[entry] = tensor
    return TicketOptimizerState(named=named, global_step=global_step, steps_per_epoch=steps_per_epoch)


def load_ticket_optimizer_state(path: str | Path, model: nn.Module, mask: Mask) -> dict[str, dict]:
    """The dense optimizer state at `path`, sliced for `model` after ``prune_model(model, mask)``: what
    ``train(..., optimizer_state=...)`` takes. Call it with the dense `model` (the ticket's weights loaded)
    *before* pruning it. Step counts are kept; moments of pruned parameters are cut to the kept heads and
    channels (ebcore.optim_state.ParameterSlices). CheckpointError when the file is missing, damaged or
    names parameters / shapes the dense `model` does not have."""
    saved = read_ticket_optimizer(path)
    params = dict(model.named_parameters())
    for name, state in saved.named.items():
        if name not in params:
            raise CheckpointError(f"{path} holds optimizer state of {name!r}, which the model has no parameter "
                                  f"of: it belongs to another model; {_RETRAIN}")
        shape = tuple(params[name].shape)
        bad = [k for k, v in state.items() if v.dim() > 0 and tuple(v.shape) != shape]
        if bad:
            raise CheckpointError(f"{path}: optimizer state {bad[0]!r} of {name} has shape "
                                  f"{tuple(state[bad[0]].shape)}, the dense parameter {shape} (is the model "
                                  f"already pruned? call this before prune_model); otherwise {_RETRAIN}")
    return ParameterSlices.record(model, mask).slice_named(saved.named)
