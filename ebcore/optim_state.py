"""Optimizer state through a prune: every state tensor of a pruned parameter (Adam's `exp_avg`,
`exp_avg_sq`, `max_exp_avg_sq`, SGD's `momentum_buffer`: any tensor of the parameter's shape) is sliced to
the kept rows / columns, in the same order as the weights; step counts and other scalars are kept.

    report = ebcore.prune_with_optimizer(model, mask, optimizer)   # prune, then re-key the optimizer in place

or, when the optimizer is rebuilt after pruning (what the Trainer callback does):

    slices = ParameterSlices.record(model, mask)   # before pruning: the parameters and their kept indices
    prune_model(model, mask)
    new_opt = build_optimizer(model)
    new_opt.state.update(slices.slice_state(old_opt.state, model))

or by parameter name, for a model rebuilt since (the study loop's `train(..., optimizer_state=...)`):

    carried = slices.slice_named(named_optimizer_state(old_opt, model_before_prune))

The kept indices come from the mask and the adapter's blocks, the same ones `prune_model` verifies the
pruned weights against (q/k/v rows of the kept heads, fused GPT-2 c_attn rows per q|k|v part, o_proj
input columns, fc1 rows and bias, fc2 input columns, Swin's relative_position_bias_table columns), so
state and weights are sliced identically. Parameters are matched by name: pruning may build new
`nn.Parameter` objects or give the old ones new data; either way the state ends up keyed by the model's
live parameters. A pruned parameter whose state holds a tensor of another shape (Adafactor's factored
moments) restarts with empty state, with a warning; parameters the prune leaves alone keep all their state.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from .adapters import get_adapter, needs_preparation
from .errors import InvalidArgumentError, PruningError, describe
from .graph import head_channels
from .masks import Mask, as_mask
from .surgery import PruneReport, check_fits, prune_model, qkv_rows


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside `optimizer` (accelerate's AcceleratedOptimizer and similar wrappers hold
    it as `.optimizer`); InvalidArgumentError if there is none."""
    inner = optimizer
    while not isinstance(inner, torch.optim.Optimizer) and hasattr(inner, "optimizer"):
        inner = inner.optimizer
    if not isinstance(inner, torch.optim.Optimizer):
        raise InvalidArgumentError(f"optimizer must be a torch.optim.Optimizer (or a wrapper holding one as "
                                   f".optimizer), got {describe(optimizer)}")
    return inner


@dataclass
class ParameterSlices:
    """The model's parameters before a prune (by name) and, for each parameter the prune shrinks, the
    kept indices per dim (sorted: the order Torch-Pruning keeps, which `prune_model` verifies)."""

    before: dict[str, nn.Parameter]
    kept: dict[str, dict[int, list[int]]]
    shapes: dict[str, tuple[int, ...]]   # before the prune (a parameter object may since hold new data)

    @classmethod
    def record(cls, model: nn.Module, mask: Mask) -> "ParameterSlices":
        """Call before `prune_model(model, mask)` (on a prepared model: GPT-2's Conv1D made Linear)."""
        mask = as_mask(mask)
        blocks = get_adapter(model).blocks(model)  # UnsupportedModelError for an unprepared GPT-2
        check_fits(blocks, mask)  # MaskMismatchError, as prune_model raises
        names = {m: n for n, m in model.named_modules()}
        kept: dict[str, dict[int, list[int]]] = {}

        def add(module: nn.Module, attr: str, dim: int, idx: list[int]) -> None:
            if getattr(module, attr, None) is not None:
                kept[f"{names[module]}.{attr}"] = {dim: list(idx)}

        for block, lm in zip(blocks, mask.layers):
            heads = list(lm.heads)
            if len(heads) < block.num_heads:
                for m, rows in zip(block.qkv, qkv_rows(block, heads, block.num_heads, lm.group_size,
                                                       lm.kept_kv_groups)):
                    add(m, "weight", 0, rows)        # (out, in): kept output rows
                    add(m, "bias", 0, rows)
                add(block.o_proj, "weight", 1, head_channels(heads, block.head_dim))  # kept input columns
                if block.position_bias_owner is not None:
                    add(block.position_bias_owner, "relative_position_bias_table", 1, heads)  # (positions, heads)
            channels = list(lm.channels)
            if len(channels) < block.num_channels:
                for up in (block.fc1, block.gate):   # a gated MLP (decoders) keeps the same gate rows
                    if up is not None:
                        add(up, "weight", 0, channels)
                        add(up, "bias", 0, channels)
                add(block.fc2, "weight", 1, channels)
        before = dict(model.named_parameters())
        return cls(before=before, kept=kept, shapes={n: tuple(p.shape) for n, p in before.items()})

    def slice_tensor(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """`value` (shaped like parameter `name` before the prune) cut to the kept indices, a new tensor."""
        for dim, idx in self.kept.get(name, {}).items():
            value = value.index_select(dim, torch.as_tensor(idx, device=value.device))
        return value if name in self.kept else value.clone()

    def slice_named(self, named: Mapping[str, dict]) -> dict[str, dict]:
        """Optimizer state by parameter name before the prune (`named_optimizer_state`) -> by name after it,
        every parameter-shaped tensor sliced to the kept indices (new tensors), scalars such as `step` kept.
        A pruned parameter whose state holds a tensor of another shape is left out (fresh state), with a
        warning."""
        out: dict[str, dict] = {}
        for name, state in named.items():
            if name not in self.shapes:
                raise InvalidArgumentError(f"optimizer state names parameter {name!r}, which the model did not "
                                           "have before the prune")
            if state:
                carried = self._slice_one(name, state)
                if carried is not None:
                    out[name] = carried
        return out

    def slice_state(self, old_state: Mapping[Any, dict], model: nn.Module) -> dict[nn.Parameter, dict]:
        """The state of `old_state` (an optimizer's `.state`, keyed by the parameters before the prune)
        moved to `model`'s live parameters, every parameter-shaped tensor sliced to the kept indices."""
        live = dict(model.named_parameters())
        named = {n: old_state[p] for n, p in self.before.items() if n in live and p in old_state}
        sliced = self.slice_named(named)
        for name, state in sliced.items():
            if name in self.kept:
                _check_shapes(name, live[name], state)
            elif tuple(live[name].shape) != self.shapes[name]:
                raise PruningError(f"parameter {name} changed shape {self.shapes[name]} -> "
                                   f"{tuple(live[name].shape)}, which the mask does not describe; its optimizer "
                                   "state cannot be carried")
        return {live[n]: state for n, state in sliced.items()}

    def _slice_one(self, name: str, state: dict) -> dict | None:
        old_shape = self.shapes[name]
        if name not in self.kept:   # not pruned: the whole state as it was (Adafactor's factored moments too)
            return {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
        carried = {}
        for key, value in state.items():
            if not torch.is_tensor(value) or value.dim() == 0:
                carried[key] = value.clone() if torch.is_tensor(value) else value   # step counts, scalars
            elif tuple(value.shape) == old_shape:
                carried[key] = self.slice_tensor(name, value)
            else:
                warnings.warn(f"optimizer state {key!r} of {name} has shape {tuple(value.shape)}, not the "
                              f"parameter's {old_shape}: that parameter restarts with empty optimizer state",
                              stacklevel=4)
                return None
        return carried

    def carry(self, optimizer: Any, model: nn.Module) -> None:
        """Re-key `optimizer` (or the optimizer it wraps) in place after the prune: its param_groups hold
        `model`'s live parameters instead of the old ones, its state the sliced state. Parameters that are not
        the model's (by identity, before the prune) are left as they are."""
        inner = unwrap_optimizer(optimizer)
        live = dict(model.named_parameters())
        name_of = {id(p): n for n, p in self.before.items()}
        moved = self.slice_state(inner.state, model)
        state = defaultdict(dict)
        for group in inner.param_groups:
            params = []
            for p in group["params"]:
                name = name_of.get(id(p))
                if name is None or name not in live:
                    params.append(p)
                    if p in inner.state:
                        state[p] = inner.state[p]
                    continue
                params.append(live[name])
                if live[name] in moved:
                    state[live[name]] = moved[live[name]]
            group["params"] = params
        inner.state = state


def named_optimizer_state(optimizer: Any, model: nn.Module) -> dict[str, dict]:
    """`optimizer`'s state by `model`'s parameter names (the state dicts themselves, not copies): the form
    `ParameterSlices.slice_named` takes, and that survives rebuilding the model and the optimizer."""
    state = unwrap_optimizer(optimizer).state
    return {name: state[p] for name, p in model.named_parameters() if p in state}


def _check_shapes(name: str, param: torch.Tensor, state: dict) -> None:
    for key, value in state.items():
        if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
            raise PruningError(f"parameter {name} has shape {tuple(param.shape)} after the prune, but its sliced "
                               f"optimizer state {key!r} has {tuple(value.shape)}: the prune changed it in a way "
                               "the mask does not describe")


def prune_with_optimizer(model: nn.Module, mask: Mask, optimizer: Any, verify: bool = True) -> PruneReport:
    """`prune_model(model, mask)` and carry `optimizer`'s state into the pruned model, in place: each kept
    weight keeps its Adam moments (sliced like the weight), every parameter its step count; the optimizer's
    param_groups hold the live parameters afterwards (keep using the same optimizer and LR scheduler).

    The optimizer may be an accelerate `AcceleratedOptimizer` (its `.optimizer` is re-keyed). GPT-2 must
    be prepared (`ebcore.prepare_model`, Conv1D -> Linear) before the optimizer is built.
    """
    inner = unwrap_optimizer(optimizer)
    if needs_preparation(model):
        raise InvalidArgumentError("the model is an unprepared GPT-2 (Conv1D layers): pruning would replace every "
                                   "parameter the optimizer holds; call ebcore.prepare_model(model) before building "
                                   "the optimizer")
    slices = ParameterSlices.record(model, mask)
    report = prune_model(model, mask, verify=verify)
    slices.carry(inner, model)
    return report
