"""Exact training cost of a run, in FLOPs: what a model costs per sample, what scoring costs per check, and
what a run pays before its retraining starts (its mask's search).

Training FLOPs are forward + backward FLOPs per sample (torch's FlopCounterMode, ebcore.measure) x samples
trained on, plus the scoring passes. A run's total is its search (each run kind names its own search cost in
ebcore.study.kinds: the dense training until the ticket when it starts from the ticket's weights, the whole
dense run for prune-at-convergence, one scoring pass for a one-shot mask, nothing for a mask trained from the
initial weights) plus its retraining. Wall time is kept beside it as a secondary, noisy column.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


_MEASURED: dict[tuple, dict[str, Any]] = {}   # architecture + batch -> measurement (same shapes: same numbers)


def measure_model(model: "nn.Module", batch: dict) -> dict[str, Any]:
    """Parameters, forward and training FLOPs per sample, and training memory of `model` on `batch`.

    FLOPs and the allocator's peak depend only on the model's class, its parameter shapes and the batch's
    shapes, so a model with the same widths as one measured before in this process (the ticket, the random
    mask and the small dense model at one ratio) reuses that measurement instead of profiling again."""
    from ..measure import count_parameters, flops_per_sample, train_flops_per_sample, training_memory
    key = (type(model).__qualname__, tuple((n, tuple(p.shape), str(p.dtype), str(p.device))
                                          for n, p in model.named_parameters()),
           tuple((k, tuple(v.shape), str(v.dtype)) for k, v in sorted(batch.items()) if hasattr(v, "shape")))
    if key not in _MEASURED:
        mem, kind = training_memory(model, batch)
        _MEASURED[key] = {"params": count_parameters(model), "flops_per_sample": flops_per_sample(model, batch),
                          "train_flops_per_sample": train_flops_per_sample(model, batch),
                          "train_memory_bytes": mem, "memory_kind": kind}
    return dict(_MEASURED[key])


def scoring_flops(criterion: str, elements: int) -> int:
    """FLOPs of one scoring pass over `elements` weight elements (see measure.scored_weight_elements)."""
    return (3 if criterion == "taylor" else 2) * elements


# --- search costs: (FLOPs, seconds) from the dense run's record and the ticket's (runners.ticket_info) ---------

def nothing(dense: dict, ticket: dict) -> tuple[float, float]:
    return 0.0, 0.0


def until_ticket(dense: dict, ticket: dict) -> tuple[float, float]:
    """The dense training until the ticket appeared, with every scoring pass until then."""
    return (ticket["samples_to_ticket"] * dense["train_flops_per_sample"]
            + dense["scoring_flops_per_check"] * (ticket["check_index"] + 1), ticket["seconds_to_ticket"])


def whole_dense_run(dense: dict, ticket: dict) -> tuple[float, float]:
    return dense["total_flops"], dense["train_seconds"]


def one_scoring_pass(dense: dict, ticket: dict) -> tuple[float, float]:
    return scoring_flops("magnitude", dense["scored_elements"]), 0.0
