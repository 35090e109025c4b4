"""Registries of how a pruned network is retrained and of the controls it is compared with.

    MODES["continue"].start        # "ticket": the dense run's weights when the ticket appeared
    CONTROLS["random"].search      # "ticket": what finding its mask costs (ebcore.study.costs)

Each entry is a small named object that says where its weights come from, how long it trains and what
its mask costs; the pipeline (ebcore.study.runs) reads them and has no branch per name. Adding a mode
or a control is one entry here (a control's mask: `control_mask`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..masks import Mask, draw_mask, random_mask

@dataclass(frozen=True)
class RetrainMode:
    """How a pruned network is retrained: where its weights come from and how long it trains."""

    name: str
    start: str          # "init": the dense run's initial weights (same seed); "ticket": the dense run's
                        # weights when the ticket appeared; "pretrained": the pretrained weights
    full_budget: bool   # train the whole budget, or only what is left after the ticket
    description: str


MODES: dict[str, RetrainMode] = {m.name: m for m in (
    RetrainMode("scratch", "init", True, "re-initialized with the dense run's initial weights, trained for the "
                "full budget (the study's vision protocol)"),
    RetrainMode("continue", "ticket", False, "the dense run's weights at the ticket, trained for the rest of the "
                "budget (Early-Bird's and EarlyBERT's protocol: the search is part of training)"),
    RetrainMode("finetune", "pretrained", True, "the pretrained weights, pruned, fine-tuned for the full budget "
                "(families that start from pretrained weights only)"),
)}


@dataclass(frozen=True)
class MaskSources:
    """What a run's mask can be drawn from, at one ratio and seed."""

    ticket: Mask                          # the early-bird ticket (the ruling detector's; fallback: last check)
    late: Mask                            # the mask of the final dense model
    ratio: float
    seed: int
    align: int
    scope: str
    untrained: Callable[[], nn.Module]    # builds the model before any training (initial or pretrained weights)


def _random(src: MaskSources) -> Mask:  # same counts per layer as the ticket, drawn uniformly
    return random_mask(src.ticket.structure, src.ratio, seed=src.seed + 1,
                       head_dims=[lm.head_dim for lm in src.ticket.layers], align=src.align,
                       group_sizes=src.ticket.group_sizes)  # KV groups (1 without grouped-query attention)


def _oneshot(src: MaskSources) -> Mask:
    return draw_mask(src.untrained(), src.ratio, scope=src.scope, criterion="magnitude", align=src.align)


@dataclass(frozen=True)
class Control:
    """A mask that the early-bird ticket is compared with, at the same ratio."""

    name: str
    search: str         # what finding its mask costs: "none", "ticket" (dense training to the ticket when it
                        # starts from the ticket's weights), "dense" (the whole dense run), "oneshot" (one scoring)
    own_mode: str | None  # a control retrained its own way regardless of the experiment's modes
    description: str
    draw: Callable[[MaskSources], Mask]


CONTROLS: dict[str, Control] = {c.name: c for c in (
    Control("random", "ticket", None, "kept units drawn uniformly at random, layerwise, same counts", _random),
    Control("late", "dense", None, "the mask of the final dense model (the whole dense run pays for it)",
            lambda src: src.late),
    Control("oneshot", "oneshot", "init", "the magnitude mask of the model before any training (one-shot pruning "
            "of the initial or pretrained weights), then trained for the full budget", _oneshot),
)}


def check_names(modes: tuple[str, ...] | None, controls: tuple[str, ...] | None) -> None:
    """A clear error for an unknown retrain mode or control."""
    for m in modes or ():
        if m not in MODES:
            raise ValueError(f"unknown retrain mode {m!r}; choose from {tuple(MODES)}")
    for c in controls or ():
        if c not in CONTROLS:
            raise ValueError(f"unknown control {c!r}; choose from {tuple(CONTROLS)}")


def retrain_epochs(mode: RetrainMode, budget: int, ticket_epoch: float) -> int:
    """Epochs a pruned network trains: the whole budget, or what is left after the ticket (0 when the ticket
    came at the very end, or never: the fallback is the last check; the pruned model is then evaluated as it is)."""
    if mode.full_budget:
        return budget
    return max(0, budget - math.ceil(ticket_epoch - 1e-9))


def control_modes(control: str, experiment_modes: tuple[str, ...], pretrained: bool) -> tuple[str, ...]:
    """The retrain modes of a control: the experiment's, or its own (from the initial or pretrained weights)."""
    if CONTROLS[control].own_mode is None:
        return experiment_modes
    return ("finetune",) if pretrained else ("scratch",)


def search_kind(kind: str, mode: RetrainMode) -> str:
    """What finding the mask of run `kind` costs under `mode`: a control retrained from the initial weights
    needs no dense training, whatever its mask's search costs when started from the ticket."""
    if kind == "early_bird":
        return "ticket"
    search = CONTROLS[kind].search
    return "none" if search == "ticket" and mode.start != "ticket" else search


def run_mask(kind: str, sources: MaskSources) -> Mask:
    """The mask of run `kind`: the early-bird ticket, or the control's."""
    if kind == "early_bird":
        return sources.ticket
    if kind not in CONTROLS:
        raise ValueError(f"unknown run kind {kind!r}; choose early_bird or one of {tuple(CONTROLS)}")
    return CONTROLS[kind].draw(sources)
