"""Aligned pruning: round the kept sizes of each layer to multiples that GPU kernels like.

Tensor-core matmul kernels run fastest when the matrix sizes are multiples of 8 (fp16/bf16) or, for
the best tile shapes, of 64. A mask drawn at ratio p keeps, e.g., 3072 * 0.7 = 2150 FFN channels;
with ``align=N`` the kept counts are rounded as follows (per layer):

* **FFN channels** (``total`` channels, ``k`` kept by the ratio): the nearest multiple of ``N``
  (ties round up, i.e. keep more), clamped to ``[N, largest multiple of N <= total]``. Exceptions:
  ``k == total`` (nothing pruned) stays ``total``, and a layer with ``total < N`` channels is kept
  whole. So a layer is never emptied and never keeps more than its dense count.
* **Heads** (``H`` heads of ``head_dim`` d): the attention width is ``heads * d``, so heads are
  rounded in units of ``g = N / gcd(N, d)`` heads, the smallest head count whose width is a multiple
  of ``N`` (``g = 1`` when ``d`` is already a multiple of ``N``: e.g. d = 64, N = 64 leaves heads as
  they are), with the same rule as channels applied to ``H`` and ``g``.

Which units are kept after rounding: rounding down drops the lowest-scoring kept units, rounding up
adds back the highest-scoring pruned ones (ties by index), so for a layerwise mask the result is the
top-``k'`` units of the layer. ``align=1`` changes nothing. Masks record their rule in
``meta["align"]``, and distances refuse to compare masks drawn under different rules.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from .errors import EbcoreError


class AlignmentError(EbcoreError, ValueError):
    """An invalid ``align`` value, or alignment asked for without the head sizes it needs."""


def check_align(align: Any, name: str = "align") -> int:
    """Return ``align`` as an int >= 1, or raise :class:`AlignmentError`."""
    if isinstance(align, bool) or not isinstance(align, numbers.Integral) or int(align) < 1:
        raise AlignmentError(f"{name} must be an integer >= 1 (1 = no rounding; e.g. 8 or 64 for tensor cores), "
                             f"got {align!r}")
    value = int(align)
    return value


def head_unit(align: int, head_dim: int) -> int:
    """Smallest number of heads g with ``g * head_dim`` a multiple of ``align``."""
    return align // math.gcd(align, head_dim)


def aligned_count(kept: int, total: int, unit: int) -> int:
    """The kept count ``kept`` (of ``total``) rounded to a multiple of ``unit`` by the module's rule."""
    if not 0 <= kept <= total or total < 1 or unit < 1:
        raise AlignmentError(f"need 0 <= kept <= total, total >= 1 and unit >= 1; got kept={kept}, "
                             f"total={total}, unit={unit}")
    if unit == 1 or kept == total:
        return kept
    most = total // unit
    if most == 0:  # the layer is narrower than one unit: keep it whole
        return total
    return unit * min(most, max(1, math.floor(kept / unit + 0.5)))


def align_kept(kept: list[int], scores: torch.Tensor, unit: int) -> list[int]:
    """Resize the sorted kept indices of one layer to ``aligned_count``, by score (best kept first).

    ``scores``: (U,) importance of the layer's U units; higher is better.
    """
    total = len(scores)
    target = aligned_count(len(kept), total, unit)
    if target == len(kept):
        return sorted(kept)
    kept_set = set(kept)
    if target < len(kept):
        # Drop the lowest-scoring kept units; ties: drop the higher index first.
        order = sorted(kept, key=lambda i: (-float(scores[i]), i))
        return sorted(order[:target])
    pruned = sorted((i for i in range(total) if i not in kept_set), key=lambda i: (-float(scores[i]), i))
    return sorted(kept_set | set(pruned[: target - len(kept)]))
