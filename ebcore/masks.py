"""Structured pruning masks: per layer, the attention heads and FFN channels that are kept.

A `Mask` is an immutable value built from importance scores at a ratio p (layerwise, or global over
layers with per-layer normalized scores), compared with the normalized Hamming distance, and saved
as JSON. Layers are never emptied: at least one head and one channel survive in each.

    mask = mask_from_scores(scores, ratio=0.3)             # heads and channels both at 30%
    mask = mask_from_scores(scores, head_ratio=0.25, ffn_ratio=0.5, scope="global")
    mask_distance(a, b)                                     # {"heads", "channels", "combined"}
    mask = mask_from_scores(scores, 0.3, align=64, head_dims=[64] * 12)  # kept sizes rounded, see ebcore.align
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from .align import AlignmentError, align_kept, check_align, head_unit
from .errors import InvalidRatioError, MaskMismatchError
from .scores import LayerScores, Scores

SCOPES = ("layerwise", "global")


@dataclass(frozen=True)
class LayerMask:
    """Kept head and FFN-channel indices (sorted) of one layer, with the layer's full sizes."""

    heads: tuple[int, ...]
    channels: tuple[int, ...]
    num_heads: int
    num_channels: int
    head_dim: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(sorted(int(h) for h in self.heads)))
        object.__setattr__(self, "channels", tuple(sorted(int(c) for c in self.channels)))
        if len(set(self.heads)) != len(self.heads) or len(set(self.channels)) != len(self.channels):
            raise MaskMismatchError("a layer mask lists the same head or channel twice")
        if self.heads and (self.heads[0] < 0 or self.heads[-1] >= self.num_heads):
            raise MaskMismatchError(f"head indices {self.heads} out of range for {self.num_heads} heads")
        if self.channels and (self.channels[0] < 0 or self.channels[-1] >= self.num_channels):
            raise MaskMismatchError(f"channel indices out of range for {self.num_channels} channels")

    def head_vector(self) -> np.ndarray:
        keep = np.zeros(self.num_heads, dtype=bool)
        keep[list(self.heads)] = True
        return keep

    def channel_vector(self) -> np.ndarray:
        keep = np.zeros(self.num_channels, dtype=bool)
        keep[list(self.channels)] = True
        return keep

    @property
    def pruned_heads(self) -> list[int]:
        return [h for h in range(self.num_heads) if h not in set(self.heads)]

    @property
    def pruned_channels(self) -> list[int]:
        kept = set(self.channels)
        return [c for c in range(self.num_channels) if c not in kept]


@dataclass(frozen=True)
class Mask:
    """Per-layer kept heads and channels of a whole model."""

    layers: tuple[LayerMask, ...]
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def structure(self) -> list[tuple[int, int]]:
        """(heads, channels) per layer of the dense model the mask was drawn on."""
        return [(lm.num_heads, lm.num_channels) for lm in self.layers]

    @property
    def kept_structure(self) -> list[tuple[int, int]]:
        return [(len(lm.heads), len(lm.channels)) for lm in self.layers]

    def check_not_empty(self) -> None:
        """Raise InvalidRatioError if any layer would lose all its heads or channels."""
        for i, lm in enumerate(self.layers):
            if not lm.heads or not lm.channels:
                what = "heads" if not lm.heads else "FFN channels"
                raise InvalidRatioError(
                    f"the mask empties layer {i} (no {what} kept): every layer must keep at least one head "
                    "and one channel; lower the ratio.")

    def sparsity(self) -> dict:
        """Fractions pruned: heads, FFN channels, and channels overall (heads count head_dim channels)."""
        heads_total = sum(lm.num_heads for lm in self.layers)
        heads_kept = sum(len(lm.heads) for lm in self.layers)
        ch_total = sum(lm.num_channels for lm in self.layers)
        ch_kept = sum(len(lm.channels) for lm in self.layers)
        att_total = sum(lm.num_heads * lm.head_dim for lm in self.layers)
        att_kept = sum(len(lm.heads) * lm.head_dim for lm in self.layers)
        return {
            "heads": 1 - heads_kept / heads_total,
            "channels": 1 - ch_kept / ch_total,
            "combined": 1 - (att_kept + ch_kept) / (att_total + ch_total),
            "heads_kept": heads_kept, "heads_total": heads_total,
            "channels_kept": ch_kept, "channels_total": ch_total,
        }

    def to_dict(self) -> dict:
        return {
            "format": "ebcore.mask/1",
            "meta": self.meta,
            "layers": [{"heads": list(lm.heads), "channels": list(lm.channels), "num_heads": lm.num_heads,
                        "num_channels": lm.num_channels, "head_dim": lm.head_dim} for lm in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Mask":
        if not isinstance(data, dict) or data.get("format") != "ebcore.mask/1":
            raise MaskMismatchError("not an ebcore mask (expected a dict with format 'ebcore.mask/1')")
        return cls(layers=tuple(LayerMask(**layer) for layer in data["layers"]), meta=dict(data.get("meta", {})))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Mask":
        return cls.from_dict(json.loads(text))

    def hash(self) -> str:
        """Short content hash (kept indices and sizes only): equal masks have equal hashes."""
        payload = json.dumps(self.to_dict()["layers"], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    @classmethod
    def full(cls, structure: list[tuple[int, int]], head_dims: list[int] | None = None) -> "Mask":
        """The mask that keeps everything of a model with the given (heads, channels) per layer."""
        head_dims = head_dims or [1] * len(structure)
        return cls(layers=tuple(LayerMask(tuple(range(h)), tuple(range(c)), h, c, hd)
                                for (h, c), hd in zip(structure, head_dims)))


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """Return `ratio` as float, or raise InvalidRatioError if it is outside [0, 1)."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise InvalidRatioError(f"{name} must be a number in [0, 1), got {ratio!r}") from None
    if not 0.0 <= value < 1.0 or np.isnan(value):
        raise InvalidRatioError(f"{name} must be in [0, 1), got {ratio}: it is the fraction of heads/channels "
                                "removed, and 1 would remove everything.")
    return value


def _n_pruned(total: int, ratio: float) -> int:
    return int(round(total * ratio + 1e-9))


def _keep_layerwise(scores: torch.Tensor, ratio: float) -> list[int]:
    n = len(scores)
    n_prune = min(_n_pruned(n, ratio), n - 1)  # never empty a layer
    order = torch.argsort(scores, descending=True, stable=True)  # best first; ties -> lower index first
    return sorted(order[: n - n_prune].tolist())


def _keep_global(per_layer: list[torch.Tensor], ratio: float) -> list[list[int]]:
    """Prune the globally lowest `ratio` of units, ranking scores normalized per layer (divided by the
    layer's mean) so layers and Swin stages of different widths compare fairly. Each layer's best unit
    is never a candidate, so no layer is emptied and the pruned count is exact."""
    total = sum(len(s) for s in per_layer)
    n_prune = min(_n_pruned(total, ratio), total - len(per_layer))
    candidates = []  # (normalized score, layer, index)
    for layer, s in enumerate(per_layer):
        norm = s / s.mean().clamp_min(1e-12)
        best = int(torch.argmax(s))
        candidates += [(float(norm[i]), layer, i) for i in range(len(s)) if i != best]
    candidates.sort(key=lambda t: (t[0], t[1], t[2]))
    pruned = {(layer, i) for _, layer, i in candidates[:n_prune]}
    return [[i for i in range(len(s)) if (layer, i) not in pruned] for layer, s in enumerate(per_layer)]


def mask_from_scores(scores: Scores, ratio: float | None = None, *, head_ratio: float | None = None,
                     ffn_ratio: float | None = None, scope: str = "layerwise",
                     head_dims: list[int] | None = None, align: int = 1) -> Mask:
    """Draw a mask that prunes the lowest-scoring `ratio` of heads and of FFN channels.

    `head_ratio` / `ffn_ratio` override `ratio` for heads / channels. `scope` is "layerwise" (each layer
    loses the same fraction) or "global" (one ranking over all layers, scores normalized per layer).
    `align` (N >= 1): round each layer's kept FFN channels, and its kept heads in units whose width
    heads * head_dim is a multiple of N, by the rule of `ebcore.align` (needs `head_dims` when N > 1);
    recorded in `meta["align"]`.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {SCOPES}")
    if ratio is None and (head_ratio is None or ffn_ratio is None):
        raise InvalidRatioError("give `ratio`, or both `head_ratio` and `ffn_ratio`")
    hr = check_ratio(head_ratio if head_ratio is not None else ratio, "head_ratio")
    fr = check_ratio(ffn_ratio if ffn_ratio is not None else ratio, "ffn_ratio")
    head_scores = [s.heads for s in scores.layers]
    ch_scores = [s.channels for s in scores.layers]
    if scope == "layerwise":
        kept_heads = [_keep_layerwise(s, hr) for s in head_scores]
        kept_ch = [_keep_layerwise(s, fr) for s in ch_scores]
    else:
        kept_heads = _keep_global(head_scores, hr)
        kept_ch = _keep_global(ch_scores, fr)
    align = check_align(align)
    if align > 1:
        kept_heads, kept_ch = _aligned(kept_heads, kept_ch, head_scores, ch_scores, head_dims, align)
    head_dims = head_dims or [1] * len(scores.layers)
    mask = Mask(
        layers=tuple(LayerMask(tuple(h), tuple(c), len(hs), len(cs), hd)
                     for h, c, hs, cs, hd in zip(kept_heads, kept_ch, head_scores, ch_scores, head_dims)),
        meta={"head_ratio": hr, "ffn_ratio": fr, "scope": scope, "criterion": scores.criterion, "align": align},
    )
    mask.check_not_empty()
    return mask


def _aligned(kept_heads: list[list[int]], kept_ch: list[list[int]], head_scores: list[torch.Tensor],
             ch_scores: list[torch.Tensor], head_dims: list[int] | None, align: int
             ) -> tuple[list[list[int]], list[list[int]]]:
    """Kept heads and channels of every layer rounded by `ebcore.align`'s rule."""
    if head_dims is None or len(head_dims) != len(kept_heads):
        raise AlignmentError(f"align={align} needs head_dims (one per layer, {len(kept_heads)} layers), got "
                             f"{head_dims!r}: pass head_dims=[block.head_dim for block in graph.blocks], "
                             "or align=1.")
    heads = [align_kept(k, s, head_unit(align, hd)) for k, s, hd in zip(kept_heads, head_scores, head_dims)]
    channels = [align_kept(k, s, align) for k, s in zip(kept_ch, ch_scores)]
    return heads, channels


def random_mask(structure: list[tuple[int, int]], ratio: float, seed: int = 0,
                head_dims: list[int] | None = None, align: int = 1) -> Mask:
    """A layerwise mask at `ratio` with kept units drawn uniformly at random (the random control);
    `align` as in `mask_from_scores`."""
    ratio = check_ratio(ratio)
    gen = torch.Generator().manual_seed(seed)
    random_scores = Scores([LayerScores(torch.rand(h, generator=gen), torch.rand(c, generator=gen))
                            for h, c in structure], criterion="random")
    mask = mask_from_scores(random_scores, ratio, head_dims=head_dims, align=align)
    return Mask(mask.layers, meta={**mask.meta, "seed": seed})


def _check_same_structure(a: Mask, b: Mask) -> None:
    if a.structure != b.structure:
        raise MaskMismatchError(f"masks of different models cannot be compared: {a.structure} vs {b.structure}")


def _check_same_align(a: Mask, b: Mask) -> None:
    ra, rb = a.meta.get("align", 1), b.meta.get("align", 1)  # masks saved before alignment existed: 1
    if ra != rb:
        raise MaskMismatchError(f"masks drawn under different alignment rules cannot be compared: align={ra} vs "
                                f"align={rb}; draw both with the same align.")


def mask_distance(a: Mask, b: Mask) -> dict[str, float]:
    """Normalized Hamming distance between two masks of the same model.

    `heads`: fraction of heads whose keep/prune decision differs; `channels`: same for FFN channels;
    `combined`: over the channels structured pruning removes, a head counting as its head_dim input
    channels of o_proj (so each decision weighs by the compute it controls).
    """
    _check_same_structure(a, b)
    _check_same_align(a, b)
    dh = dc = total_h = total_c = att_diff = att_total = 0
    for la, lb in zip(a.layers, b.layers):
        head_diff = int(np.sum(la.head_vector() != lb.head_vector()))
        dh += head_diff
        dc += int(np.sum(la.channel_vector() != lb.channel_vector()))
        total_h += la.num_heads
        total_c += la.num_channels
        att_diff += head_diff * la.head_dim
        att_total += la.num_heads * la.head_dim
    return {"heads": dh / total_h, "channels": dc / total_c, "combined": (att_diff + dc) / (att_total + total_c)}


def pairwise_distances(masks: list[Mask], kind: str = "combined") -> np.ndarray:
    """(N, N) matrix of mask distances of the given kind ("heads", "channels" or "combined")."""
    n = len(masks)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = mask_distance(masks[i], masks[j])[kind]
    return out
