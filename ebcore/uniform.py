"""Uniform masks: one width per layer shape, so that a plain Hugging Face config (one `num_attention_heads`,
one `intermediate_size` / `mlp_ratio`) can describe the pruned model (`save_pruned(format="hf")`).

A config holds one FFN width for the whole model (`intermediate_size`; Swin: one `mlp_ratio` of each stage's
width) but head counts per layer shape (Swin: `num_heads`, one per stage; grouped-query attention: query and
KV heads). So under `uniform=True`:

* Heads follow the layerwise rule of `ebcore.selection` (with `align`, and KV groups kept evenly under
  grouped-query attention): layers with the same heads and group size keep the same count.
* FFN channels keep one fraction in every layer. For layers of ``totals[l]`` channels let ``g = gcd(totals)``
  and ``u[l] = totals[l] / g`` (all 1 when every layer has the same width; Swin's stages, e.g. 72, 72, 144,
  give ``u = 1, 1, 2``). Every layer keeps ``m * u[l]`` channels, one ``m`` for the whole model, so the
  kept fraction ``m / g`` is exactly the same everywhere: ``m = g - round(g * ratio)``, at least 1 (a layer
  is never emptied), rounded by ``ebcore.align.aligned_count`` to a multiple of the smallest ``s`` with
  ``s * u[l]`` a multiple of ``align`` in every layer. Which channels: the best-scoring of each layer
  (ties: lower index).

    counts = uniform_counts([72, 72, 144], 0.3)                  # [50, 50, 100]
    kept = uniform_channels(ch_scores, 0.3, align=1)             # sorted kept indices per layer
"""
from __future__ import annotations

import math
from functools import reduce

import torch

from .align import aligned_count


def uniform_counts(totals: list[int], ratio: float, align: int = 1) -> list[int]:
    """Kept units per layer: ``m * totals[l] / gcd(totals)``, one ``m`` for all layers (see the module doc)."""
    g = reduce(math.gcd, totals)
    units = [t // g for t in totals]
    s = reduce(math.lcm, (align // math.gcd(align, u) for u in units), 1)  # s * u[l] is a multiple of align
    m = max(1, g - int(round(g * ratio + 1e-9)))
    m = aligned_count(m, g, s)
    return [m * u for u in units]


def top_units(scores: torch.Tensor, keep: int) -> list[int]:
    """Sorted indices of the `keep` best units of one layer; scores (U,), higher is better."""
    order = torch.argsort(scores, descending=True, stable=True)  # best first; ties -> lower index
    return sorted(order[:keep].tolist())


def uniform_channels(ch_scores: list[torch.Tensor], ratio: float, align: int = 1) -> list[list[int]]:
    """Kept FFN channels per layer under the uniform rule; `ch_scores[l]` is (F_l,)."""
    counts = uniform_counts([len(s) for s in ch_scores], ratio, align)
    return [top_units(s, n) for s, n in zip(ch_scores, counts)]
