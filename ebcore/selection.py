"""Which units of each layer a mask keeps: the layerwise and global rankings, alignment (`ebcore.align`)
and the grouped-query-attention rule, for `ebcore.masks`.

Heads of a layer with KV groups of `g` query heads (g > 1; query head h belongs to KV group h // g) are
kept in equal numbers per group: the layerwise ratio is applied inside each group (k = g - round(g * p)
heads kept per group, at least 1); a global ranking fixes only the layer's share (its kept count, rounded
to a multiple of the number of groups), and each group then keeps its k best heads. With `kv_groups=True`
whole KV groups are the units instead (a group's score is the mean of its heads'); every kept group keeps
all its heads. With g = 1 (no grouped-query attention) heads are ranked as they always were.

    kept = keep_heads(head_scores, 0.3, "layerwise", head_dims, group_sizes, align=1, kv_groups=False)
"""
from __future__ import annotations

import math

import torch

from .align import AlignmentError, align_kept, aligned_count, head_unit


def n_pruned(total: int, ratio: float) -> int:
    return int(round(total * ratio + 1e-9))


def keep_layerwise(scores: torch.Tensor, ratio: float) -> list[int]:
    """The best `1 - ratio` of a layer's units (at least one), sorted; ties keep the lower index."""
    n = len(scores)
    n_prune = min(n_pruned(n, ratio), n - 1)  # never empty a layer
    order = torch.argsort(scores, descending=True, stable=True)  # best first; ties -> lower index first
    return sorted(order[: n - n_prune].tolist())


def keep_global(per_layer: list[torch.Tensor], ratio: float) -> list[list[int]]:
    """Prune the globally lowest `ratio` of units, ranking scores normalized per layer (divided by the
    layer's mean) so layers and Swin stages of different widths compare fairly. Each layer's best unit
    is never a candidate, so no layer is emptied and the pruned count is exact."""
    total = sum(len(s) for s in per_layer)
    n_prune = min(n_pruned(total, ratio), total - len(per_layer))
    candidates = []  # (normalized score, layer, index)
    for layer, s in enumerate(per_layer):
        norm = s / s.mean().clamp_min(1e-12)
        best = int(torch.argmax(s))
        candidates += [(float(norm[i]), layer, i) for i in range(len(s)) if i != best]
    candidates.sort(key=lambda t: (t[0], t[1], t[2]))
    pruned = {(layer, i) for _, layer, i in candidates[:n_prune]}
    return [[i for i in range(len(s)) if (layer, i) not in pruned] for layer, s in enumerate(per_layer)]


def keep(per_layer: list[torch.Tensor], ratio: float, scope: str) -> list[list[int]]:
    """Kept indices per layer by `scope` ("layerwise" or "global")."""
    if scope == "layerwise":
        return [keep_layerwise(s, ratio) for s in per_layer]
    return keep_global(per_layer, ratio)


def keep_channels(ch_scores: list[torch.Tensor], ratio: float, scope: str, align: int) -> list[list[int]]:
    """Kept FFN channels per layer, rounded to multiples of `align`."""
    kept = keep(ch_scores, ratio, scope)
    if align > 1:
        kept = [align_kept(k, s, align) for k, s in zip(kept, ch_scores)]
    return kept


def keep_heads(head_scores: list[torch.Tensor], ratio: float, scope: str, head_dims: list[int] | None,
               group_sizes: list[int], align: int, kv_groups: bool) -> list[list[int]]:
    """Kept query heads per layer under the module's rules; `head_scores[i]` is (H_i,)."""
    if align > 1 and (head_dims is None or len(head_dims) != len(head_scores)):
        raise AlignmentError(f"align={align} needs head_dims (one per layer, {len(head_scores)} layers), got "
                             f"{head_dims!r}: pass head_dims=[block.head_dim for block in graph.blocks], "
                             "or align=1.")
    dims = head_dims or [1] * len(head_scores)
    if kv_groups:
        unit_scores = [s.view(-1, g).mean(dim=1) for s, g in zip(head_scores, group_sizes)]  # (G,) per layer
        kept_groups = keep(unit_scores, ratio, scope)
        if align > 1:  # k/v are kept groups * head_dim wide, q/o that times g
            kept_groups = [align_kept(k, s, head_unit(align, hd)) for k, s, hd in zip(kept_groups, unit_scores, dims)]
        return [[j * g + i for j in k for i in range(g)] for k, g in zip(kept_groups, group_sizes)]
    kept = keep(head_scores, ratio, scope)
    out = []
    for layer, (k, s, g, hd) in enumerate(zip(kept, head_scores, group_sizes, dims)):
        if g == 1:
            out.append(align_kept(k, s, head_unit(align, hd)) if align > 1 else k)
            continue
        groups = len(s) // g
        if scope == "layerwise":
            per_group = g - min(n_pruned(g, ratio), g - 1)
        else:  # the global ranking decides the layer's share; the groups split it evenly
            per_group = min(g, max(1, math.floor(len(k) / groups + 0.5)))
        if align > 1:  # kept width per_group * groups * hd must be a multiple of align
            unit = head_unit(align, hd)
            per_group = aligned_count(per_group, g, unit // math.gcd(unit, groups))
        out.append(best_per_group(s, g, per_group))
    return out


def best_per_group(scores: torch.Tensor, group_size: int, per_group: int) -> list[int]:
    """The `per_group` best heads of every KV group of `group_size` consecutive heads (ties: lower index)."""
    kept = []
    for start in range(0, len(scores), group_size):
        order = torch.argsort(scores[start:start + group_size], descending=True, stable=True)
        kept += [start + int(i) for i in order[:per_group]]
    return sorted(kept)
