"""The closed registries of what the study runs: how a pruned network is retrained (`MODES`) and every kind
of run (`RUN_KINDS`: dense, the early-bird ticket, each control). One entry carries everything the
pipeline, the costs, the tables, the paired comparisons and the figures need, so adding a run kind is one
entry here (`register_run_kind` at run time) and nothing else.

    MODES["continue"].start                 # "ticket": the dense run's weights when the ticket appeared
    RUN_KINDS["random"].search_cost(dense, ticket, MODES["continue"])   # ("ticket", FLOPs, seconds)
    RUN_KINDS["same_flops"].budget          # "eb_flops": trained as long as the EB pipeline's FLOPs allow

Importing this module loads no torch: the command line validates names with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from . import costs

if TYPE_CHECKING:
    from torch import nn

    from ..masks import Mask


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

    ticket: "Mask"                        # the early-bird ticket (the ruling detector's; fallback: last check)
    final: "Mask"                         # the mask of the last check (the final dense model, with epoch checks)
    ratio: float
    seed: int
    align: int
    scope: str
    untrained: Callable[[], "nn.Module"]  # builds the model before any training (initial or pretrained weights)


# What finding a mask costs before retraining starts, by name: (FLOPs, seconds) from the dense run's record and
# the ticket's (ebcore.study.runners.ticket_info).
SEARCH_COSTS: dict[str, Callable[[dict, dict], "tuple[float, float]"]] = {
    "none": costs.nothing, "ticket": costs.until_ticket, "dense": costs.whole_dense_run,
    "oneshot": costs.one_scoring_pass,
}

# Where a run's weights come from when they are its own, not its retrain mode's (RunKind.start), with the
# mode name its rows carry.
STARTS = {
    "init": "the dense run's initial weights (same seed), or the pretrained ones",
    "fresh": "a new random initialization (not the dense run's), at the mask's widths",
    "final": "the dense run's final weights",
}
# How long a run trains (RunKind.budget).
BUDGETS = {
    "mode": "what its retrain mode says (the full budget, or the rest after the ticket)",
    "full": "the full budget",
    "finetune": "a fine-tuning of FINETUNE_FRACTION of the budget, on its own warm-up + cosine schedule",
    "eb_flops": "as many samples as make its training FLOPs equal the EB pipeline's total at the cost ratio, on "
                "its own full warm-up + cosine schedule",
}
FINETUNE_FRACTION = 0.3    # prune-at-convergence: fine-tuned for 30 % of the budget (3 of 10 epochs)
FRESH_SEED_OFFSET = 10_000  # a fresh initialization: the seed + this, never the dense run's initial weights


@dataclass(frozen=True)
class RunKind:
    """One kind of run: its mask, its weights and schedule, its cost, what it is compared with, how it looks."""

    name: str
    label: str                       # tables and legends
    colour: str                      # figures (a matplotlib colour)
    marker: str                      # figures (a matplotlib marker)
    role: str                        # "dense", "ticket" or "control"
    description: str
    mask: Callable[[MaskSources], "Mask"] | None   # the mask it prunes with (None: not pruned, dense widths)
    search: Callable[[RetrainMode], str]   # mode -> what its mask's search costs (a SEARCH_COSTS name)
    short: str = ""                  # short label beside points ("EB"); empty: the label
    linestyle: str = "-"             # figures (a matplotlib line style)
    start: str | None = None         # None: retrained in the experiment's modes; else its own start (STARTS)
    budget: str = "mode"             # how long it trains (BUDGETS)
    at: str = "controls"             # its ratios: "controls" (Settings.control_ratios) or "cost" (the cost ratio)
    compare_with: str | None = None  # the paired table sets this kind against that one at the same ratio and mode

    def modes(self, experiment_modes: tuple[str, ...], pretrained: bool) -> tuple[str, ...]:
        """The retrain modes this kind runs in: the experiment's, or the one its own start names."""
        if self.start is None:
            return experiment_modes
        if self.start == "init":
            return ("finetune",) if pretrained else ("scratch",)
        return {"fresh": ("scratch",), "final": ("final",)}[self.start]

    def ratios(self, control_ratios: tuple[float, ...], cost_ratio: float) -> tuple[float, ...]:
        """The ratios this kind runs at."""
        return (cost_ratio,) if self.at == "cost" else control_ratios

    def search_cost(self, dense: dict, ticket: dict, mode: RetrainMode | None) -> tuple[str, float, float]:
        """(search name, FLOPs, seconds) this run pays before its retraining starts, in `mode` (None: the kind
        has its own start)."""
        name = self.search(mode)
        flops, seconds = SEARCH_COSTS[name](dense, ticket)
        return name, flops, seconds


def _ticket(src: MaskSources) -> "Mask":
    return src.ticket


def _random(src: MaskSources) -> "Mask":  # same counts per layer as the ticket, drawn uniformly
    from ..masks import random_mask
    return random_mask(src.ticket.structure, src.ratio, seed=src.seed + 1,
                       head_dims=[lm.head_dim for lm in src.ticket.layers], align=src.align,
                       group_sizes=src.ticket.group_sizes)  # KV groups (1 without grouped-query attention)


def _final(src: MaskSources) -> "Mask":
    return src.final


def _oneshot(src: MaskSources) -> "Mask":
    from ..masks import draw_mask
    return draw_mask(src.untrained(), src.ratio, scope=src.scope, criterion="magnitude", align=src.align)


def _ticket_if_from_ticket(mode: RetrainMode | None) -> str:
    """A mask used on the ticket's weights pays the dense training until the ticket; from the initial weights
    it needs no dense training at all."""
    return "ticket" if mode is not None and mode.start == "ticket" else "none"


RUN_KINDS: dict[str, RunKind] = {k.name: k for k in (
    RunKind("dense", "dense", "black", "s", "dense", "the unpruned model trained for the whole budget while the "
            "detectors watch", None, lambda mode: "none", short="dense"),
    RunKind("early_bird", "early-bird", "#0173b2", "o", "ticket", "the early-bird ticket of the ruling rule "
            "(a ratio whose ticket never appeared falls back to the last check's mask, labelled so)", _ticket,
            lambda mode: "ticket", short="EB", compare_with="dense"),
    RunKind("random", "random", "#de8f05", "X", "control", "kept units drawn uniformly at random, layerwise, same "
            "counts as the ticket, retrained like it", _random, _ticket_if_from_ticket, short="random",
            linestyle="--", compare_with="early_bird"),
    RunKind("converged", "prune at convergence + fine-tune", "#029e73", "^", "control", "the classic pipeline: "
            "the dense run's final weights pruned with the final mask, then fine-tuned for "
            f"{FINETUNE_FRACTION:.0%} of the budget (charged the whole dense run plus the fine-tuning)", _final,
            lambda mode: "dense", short="converged", linestyle=":", start="final", budget="finetune",
            compare_with="early_bird"),
    RunKind("same_flops", "dense, same FLOPs", "#949494", "D", "control", "the unpruned model trained on its own "
            "full warm-up + cosine schedule for the same total FLOPs as the EB pipeline at the cost ratio "
            "(training less instead of pruning)", None, lambda mode: "none", short="dense same-FLOPs",
            linestyle="-", start="init", budget="eb_flops", at="cost", compare_with="early_bird"),
    RunKind("small_dense", "small dense (ticket widths)", "#cc78bc", "P", "control", "a dense model at the ticket's "
            "widths, freshly initialized and trained from scratch for the full budget (its widths come from the "
            "ticket; their search is not charged)", _ticket, lambda mode: "none", short="small dense",
            linestyle="-.", start="fresh", budget="full", compare_with="early_bird"),
    RunKind("oneshot", "one-shot", "#d55e00", "v", "control", "the magnitude mask of the model before any training "
            "(one-shot pruning of the initial or pretrained weights), then trained for the full budget", _oneshot,
            lambda mode: "oneshot", short="one-shot", linestyle="-.", start="init", budget="full",
            compare_with="early_bird"),
)}


def register_run_kind(kind: RunKind) -> RunKind:
    """Add (or replace) a run kind at run time (tests, plug-ins); a control also needs a cost and a mask."""
    if kind.role not in ("dense", "ticket", "control"):
        raise ValueError(f"run kind {kind.name!r}: role must be dense, ticket or control, got {kind.role!r}")
    if kind.role == "ticket" and kind.mask is None:
        raise ValueError(f"run kind {kind.name!r} is a ticket, so it needs a mask source")
    if kind.role == "control" and kind.mask is None and kind.start is None:
        raise ValueError(f"run kind {kind.name!r}: a control without a mask source (dense widths) needs its own "
                         f"start ({tuple(STARTS)}) and budget")
    if kind.start is not None and kind.start not in STARTS:
        raise ValueError(f"run kind {kind.name!r}: start must be None or one of {tuple(STARTS)}, got {kind.start!r}")
    if kind.budget not in BUDGETS or (kind.budget == "mode") != (kind.start is None):
        raise ValueError(f"run kind {kind.name!r}: budget must be one of {tuple(BUDGETS)}, and 'mode' exactly when "
                         f"it has no start of its own; got budget {kind.budget!r} with start {kind.start!r}")
    if kind.at not in ("controls", "cost"):
        raise ValueError(f"run kind {kind.name!r}: at must be 'controls' or 'cost', got {kind.at!r}")
    probe = kind.search(MODES["continue"]), kind.search(MODES["scratch"]), kind.search(None)
    if any(name not in SEARCH_COSTS for name in probe):
        raise ValueError(f"run kind {kind.name!r}: its search must name one of {tuple(SEARCH_COSTS)}, got {probe}")
    RUN_KINDS[kind.name] = kind
    return kind


def control_names() -> tuple[str, ...]:
    return tuple(name for name, k in RUN_KINDS.items() if k.role == "control")


def retrain_epochs(mode: RetrainMode, budget: int, ticket_epoch: float) -> int:
    """Epochs a pruned network trains: the whole budget, or what is left after the ticket (0 when the ticket
    came at the very end, or never: the fallback is the last check; the pruned model is then evaluated as it is)."""
    if mode.full_budget:
        return budget
    return max(0, budget - math.ceil(ticket_epoch - 1e-9))


def run_label(kind: str, mode: str, ratio: float) -> str:
    """The run's name in tables: "dense", or "<kind> <mode> p=<ratio>" ("early-bird continue p=0.3")."""
    if RUN_KINDS.get(kind) is not None and RUN_KINDS[kind].role == "dense":
        return "dense"
    return f"{kind.replace('_', '-')} {mode} p={ratio:g}"
