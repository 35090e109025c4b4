"""Uniform masks: the same kept fraction in every layer, so that a pruned model has one width per layer shape
and a plain Hugging Face config (one `num_attention_heads`, one `intermediate_size` / `mlp_ratio`) can describe it.

A config holds one FFN width for the whole model (`intermediate_size`; Swin: one `mlp_ratio` of each stage's
width), but head counts per layer shape (Swin: `num_heads`, one per stage). So FFN channels keep one fraction
across all layers, and heads are counted layer by layer (layers with the same head count keep the same count).
The rule, for layers of `totals[l]` units (FFN channels: all layers at once; heads: each layer on its own):

* Let ``g = gcd(totals)`` and ``u[l] = totals[l] / g`` (all 1 when every layer has the same width; Swin's
  stages, e.g. FFN widths 72, 72, 144, give ``u = 1, 1, 2``). Every layer keeps ``m * u[l]`` units, one
  ``m`` for the whole model, so the kept fraction ``m / g`` is exactly the same everywhere.
* ``m = g - round(g * ratio)``, at least 1 (a layer is never emptied).
* Steps: a layer may need its kept count to be a multiple of ``step[l]`` (``align``, in heads via
  ``ebcore.align.head_unit``; a block's ``head_group``, e.g. the query heads that share one key/value head
  under grouped-query attention). ``m`` is then rounded by ``ebcore.align.aligned_count`` to a multiple of
  the smallest ``s`` with ``s * u[l]`` a multiple of every ``step[l]``.
* Which units: in each layer, the highest-scoring ones (ties: lower index). With ``head_group = k > 1``
  heads are taken in whole groups of ``k`` consecutive heads (a group scores the mean of its heads).

    counts = uniform_counts([72, 72, 144], 0.3)                  # [50, 50, 100]
    kept = top_units(scores, 50)                                 # sorted indices of the best 50
"""
from __future__ import annotations

import math
from functools import reduce

import torch

from .align import aligned_count, head_unit
from .errors import InvalidArgumentError, describe


def check_head_groups(head_groups: object, num_heads: list[int]) -> list[int]:
    """`head_groups` (None, or one positive int per layer that divides the layer's head count) as a list."""
    if head_groups is None:
        return [1] * len(num_heads)
    ok = isinstance(head_groups, (list, tuple)) and len(head_groups) == len(num_heads) and all(
        isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in head_groups)
    if not ok:
        raise InvalidArgumentError(f"head_groups must be a list of {len(num_heads)} positive integers (heads kept or "
                                   f"pruned together in each layer, 1 = single heads), got {describe(head_groups)}")
    for i, (g, h) in enumerate(zip(head_groups, num_heads)):
        if h % g:
            raise InvalidArgumentError(f"head_groups[{i}] = {g} does not divide layer {i}'s {h} heads")
    return [int(g) for g in head_groups]


def uniform_counts(totals: list[int], ratio: float, steps: list[int] | None = None) -> list[int]:
    """Kept units per layer: ``m * totals[l] / gcd(totals)``, one ``m`` for all layers (see the module doc)."""
    g = reduce(math.gcd, totals)
    units = [t // g for t in totals]
    steps = steps or [1] * len(totals)
    # The smallest s such that s * u is a multiple of every layer's step: s = lcm of step / gcd(step, u).
    s = reduce(math.lcm, (st // math.gcd(st, u) for st, u in zip(steps, units)), 1)
    m = max(1, g - int(round(g * ratio + 1e-9)))
    m = aligned_count(m, g, s)
    return [m * u for u in units]


def top_units(scores: torch.Tensor, keep: int, group: int = 1) -> list[int]:
    """Sorted indices of the `keep` best units of one layer, in whole groups of `group` consecutive units.

    scores: (U,), higher is better; `keep` and U are multiples of `group`.
    """
    grouped = scores.reshape(-1, group).mean(dim=1)                     # (U / group,)
    order = torch.argsort(grouped, descending=True, stable=True)       # best first; ties -> lower index
    kept_groups = order[: keep // group].tolist()
    return sorted(i * group + j for i in kept_groups for j in range(group))


def uniform_kept(head_scores: list[torch.Tensor], ch_scores: list[torch.Tensor], hr: float, fr: float, scope: str,
                 head_dims: list[int], align: int, head_groups: list[int] | None
                 ) -> tuple[list[list[int]], list[list[int]]]:
    """Kept heads and channels of a uniform mask, the best units of each layer: heads (H_l,) and channels
    (F_l,) scores per layer, ratios, and what `ebcore.masks.mask_from_scores` was given."""
    if scope != "layerwise":
        raise InvalidArgumentError(f"uniform=True needs scope='layerwise', got scope={scope!r}: uniform widths fix "
                                   "every layer's count, so a global ranking has nothing to decide (which units "
                                   "are kept is still chosen by score within each layer).")
    groups = check_head_groups(head_groups, [len(s) for s in head_scores])
    head_steps = [math.lcm(head_unit(align, hd), g) for hd, g in zip(head_dims, groups)]
    # Heads: the rule per layer (layers of one head count keep one count); FFN channels: one fraction for all.
    n_heads = [uniform_counts([len(s)], hr, [step])[0] for s, step in zip(head_scores, head_steps)]
    n_ch = uniform_counts([len(s) for s in ch_scores], fr, [align] * len(ch_scores))
    return ([top_units(s, n, g) for s, n, g in zip(head_scores, n_heads, groups)],
            [top_units(s, n) for s, n in zip(ch_scores, n_ch)])
