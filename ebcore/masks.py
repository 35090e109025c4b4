"""Structured pruning masks: per layer, the attention heads and FFN channels that are kept.

A `Mask` is an immutable value built from importance scores at a ratio p (layerwise, or global over
layers with per-layer normalized scores), compared with the normalized Hamming distance, and saved
as JSON. Layers are never emptied: at least one head and one channel survive in each. Every layer mask knows its
head dim (a head weighs head_dim channels in the combined distance and sparsity): scores from
`score_model` carry them, and masks with different head dims are never compared.

    mask = draw_mask(model, 0.3)                            # graph, scores and mask in one call
    mask = mask_from_scores(scores, ratio=0.3)             # heads and channels both at 30%
    mask = mask_from_scores(scores, head_ratio=0.25, ffn_ratio=0.5, scope="global")
    mask_distance(a, b)                                     # {"heads", "channels", "combined"}
    mask = mask_from_scores(scores, 0.3, align=64, head_dims=[64] * 12)  # kept sizes rounded, see ebcore.align
    mask = draw_mask(model, 0.3, uniform=True)              # one width per layer shape, see ebcore.uniform
"""
from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .align import AlignmentError, align_kept, check_align, head_unit
from .errors import InvalidArgumentError, InvalidRatioError, MaskMismatchError, describe
from .graph import ModelGraph
from .scores import LayerScores, Scores, as_graph, check_head_dims, score_model
from .uniform import uniform_kept

SCOPES = ("layerwise", "global")
DISTANCE_KINDS = ("combined", "heads", "channels")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _index_tuple(values: object, name: str) -> tuple[int, ...]:
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise InvalidArgumentError(f"LayerMask.{name} must be a sequence of kept indices (ints), got "
                                   f"{describe(values)}")
    values = list(values)
    if not all(_is_int(v) for v in values):
        raise InvalidArgumentError(f"LayerMask.{name} must hold integer indices, got {describe(values)}")
    return tuple(sorted(int(v) for v in values))


@dataclass(frozen=True)
class LayerMask:
    """Kept head and FFN-channel indices (sorted) of one layer, with the layer's full sizes."""

    heads: tuple[int, ...]
    channels: tuple[int, ...]
    num_heads: int
    num_channels: int
    head_dim: int = 1

    def __post_init__(self) -> None:
        for name in ("num_heads", "num_channels", "head_dim"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidArgumentError(f"LayerMask.{name} must be a positive integer, got {describe(value)}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "heads", _index_tuple(self.heads, "heads"))
        object.__setattr__(self, "channels", _index_tuple(self.channels, "channels"))
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
        if isinstance(self.layers, (str, bytes, dict)) or not hasattr(self.layers, "__iter__"):
            raise InvalidArgumentError(f"Mask.layers must be a sequence of LayerMask, got {describe(self.layers)}")
        layers = tuple(self.layers)
        bad = [lm for lm in layers if not isinstance(lm, LayerMask)]
        if bad:
            raise InvalidArgumentError(f"Mask.layers must hold LayerMask values, got {describe(bad[0])}; "
                                       "use Mask.from_dict for a saved mask.")
        if not isinstance(self.meta, dict):
            raise InvalidArgumentError(f"Mask.meta must be a dict, got {describe(self.meta)}")
        object.__setattr__(self, "layers", layers)

    @property
    def head_dims(self) -> list[int]:
        """Head size (channels per head) of every layer."""
        return [lm.head_dim for lm in self.layers]

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
        keys = {"heads", "channels", "num_heads", "num_channels", "head_dim"}
        layers = data.get("layers")
        if not isinstance(layers, list) or not all(isinstance(lm, dict) and set(lm) == keys for lm in layers):
            raise MaskMismatchError(f"a saved mask's 'layers' must be a list of dicts with keys {sorted(keys)}, got "
                                    f"{describe(layers)}")
        meta = data.get("meta", {})
        try:
            return cls(layers=tuple(LayerMask(**layer) for layer in layers), meta=dict(meta))
        except (InvalidArgumentError, MaskMismatchError, TypeError, ValueError) as err:
            raise MaskMismatchError(f"a saved mask's layers are invalid: {err}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Mask":
        if not isinstance(text, (str, bytes)):
            raise InvalidArgumentError(f"text must be a JSON string, got {describe(text)}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MaskMismatchError(f"not an ebcore mask: invalid JSON ({err})") from None
        return cls.from_dict(data)

    def hash(self) -> str:
        """Short content hash (kept indices and sizes only): equal masks have equal hashes."""
        payload = json.dumps(self.to_dict()["layers"], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    @classmethod
    def full(cls, structure: list[tuple[int, ...]], head_dims: list[int] | None = None) -> "Mask":
        """The mask that keeps everything of a model with the given (heads, channels) or
        (heads, channels, head_dim) per layer (head dims 1 if neither the structure nor `head_dims` has them)."""
        pairs, dims = _split_structure(structure, head_dims)
        dims = dims or [1] * len(pairs)
        return cls(layers=tuple(LayerMask(tuple(range(h)), tuple(range(c)), h, c, hd)
                                for (h, c), hd in zip(pairs, dims)))


def as_mask(mask: object, name: str = "mask") -> Mask:
    """`mask` if it is a Mask, else InvalidArgumentError saying how to get one."""
    if not isinstance(mask, Mask):
        hint = " (a saved mask: Mask.from_dict(d))" if isinstance(mask, dict) else ""
        raise InvalidArgumentError(f"{name} must be an ebcore Mask, got {describe(mask)}; draw one with "
                                   f"ebcore.draw_mask(model, ratio){hint}.")
    return mask


def _split_structure(structure: object, head_dims: object) -> tuple[list[tuple[int, int]], list[int] | None]:
    """(heads, channels) pairs and head dims from a structure of pairs or (heads, channels, head_dim) triples."""
    ok = isinstance(structure, (list, tuple)) and len(structure) > 0 and all(
        isinstance(t, (list, tuple)) and len(t) in (2, 3) and all(_is_int(v) and v >= 1 for v in t) for t in structure)
    if not ok or len({len(t) for t in structure}) != 1:
        raise InvalidArgumentError(
            "structure must be a non-empty list of (heads, channels) or (heads, channels, head_dim) tuples of positive "
            f"integers, one per layer, got {describe(structure)}")
    pairs = [(int(t[0]), int(t[1])) for t in structure]
    dims = [int(t[2]) for t in structure] if len(structure[0]) == 3 else None
    if head_dims is not None:
        given = check_head_dims(head_dims, len(pairs))
        if dims is not None and given != dims:
            raise MaskMismatchError(f"head_dims {given} contradict the structure's head dims {dims}")
        dims = given
    return pairs, dims


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """Return `ratio` as float, or raise InvalidRatioError (naming `name`) if it is not a real number
    in [0, 1). Strings ("0.3") and booleans are refused, not converted."""
    if isinstance(ratio, torch.Tensor) and ratio.numel() == 1 and not ratio.dtype == torch.bool:
        ratio = ratio.item()
    if isinstance(ratio, (bool, np.bool_)) or not isinstance(ratio, numbers.Real):
        raise InvalidRatioError(f"{name} must be a number in [0, 1) (the fraction of heads/channels removed), got "
                                f"{describe(ratio)}; pass e.g. 0.3.")
    value = float(ratio)
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
                     head_dims: list[int] | None = None, align: int = 1, uniform: bool = False,
                     head_groups: list[int] | None = None) -> Mask:
    """Draw a mask that prunes the lowest-scoring `ratio` of heads and of FFN channels.

    `head_ratio` / `ffn_ratio` override `ratio` for heads / channels. `scope` is "layerwise" (each layer
    loses the same fraction) or "global" (one ranking over all layers, scores normalized per layer).
    Head dims come from `scores` (score_model sets them); `head_dims` is only needed for hand-made
    scores, and must agree with the scores' own otherwise.
    `align` (N >= 1): round each layer's kept FFN channels, and its kept heads in units whose width
    heads * head_dim is a multiple of N, by the rule of `ebcore.align` (needs `head_dims` when N > 1);
    recorded in `meta["align"]`.
    `uniform`: every layer keeps the same fraction, so layers of one width keep one width (the form a plain
    Hugging Face config can hold, see `ebcore.io.save_pruned(format="hf")`); counts by the rule of
    `ebcore.uniform`, units still chosen by score within each layer. Needs scope="layerwise" (uniform counts
    leave nothing for a global ranking to decide). `head_groups` (uniform only): per layer, heads kept or
    pruned together in groups of that many consecutive heads (e.g. grouped-query attention). Recorded in
    `meta["uniform"]`.
    """
    if not isinstance(scores, Scores):
        raise InvalidArgumentError(f"scores must be ebcore Scores (from score_model), got {describe(scores)}; "
                                   "for a model, call ebcore.draw_mask(model, ratio).")
    _check_scope(scope)
    _check_scores_finite(scores)
    if ratio is None and (head_ratio is None or ffn_ratio is None):
        raise InvalidRatioError("give `ratio`, or both `head_ratio` and `ffn_ratio`")
    base = check_ratio(ratio, "ratio") if ratio is not None else None
    hr = check_ratio(head_ratio, "head_ratio") if head_ratio is not None else base
    fr = check_ratio(ffn_ratio, "ffn_ratio") if ffn_ratio is not None else base
    head_dims = _resolve_head_dims(scores, head_dims)
    head_scores = [s.heads for s in scores.layers]
    ch_scores = [s.channels for s in scores.layers]
    if not isinstance(uniform, bool):
        raise InvalidArgumentError(f"uniform must be True or False, got {describe(uniform)}")
    if head_groups is not None and not uniform:
        raise InvalidArgumentError("head_groups applies to uniform masks only; pass uniform=True")
    align = check_align(align)
    if uniform:
        kept_heads, kept_ch = uniform_kept(head_scores, ch_scores, hr, fr, scope, head_dims, align, head_groups)
    elif scope == "layerwise":
        kept_heads = [_keep_layerwise(s, hr) for s in head_scores]
        kept_ch = [_keep_layerwise(s, fr) for s in ch_scores]
    else:
        kept_heads = _keep_global(head_scores, hr)
        kept_ch = _keep_global(ch_scores, fr)
    if align > 1 and not uniform:
        kept_heads, kept_ch = _aligned(kept_heads, kept_ch, head_scores, ch_scores, head_dims, align)
    mask = Mask(
        layers=tuple(LayerMask(tuple(h), tuple(c), len(hs), len(cs), hd)
                     for h, c, hs, cs, hd in zip(kept_heads, kept_ch, head_scores, ch_scores, head_dims)),
        meta={"head_ratio": hr, "ffn_ratio": fr, "scope": scope, "criterion": scores.criterion, "align": align,
              **({"uniform": True} if uniform else {})},
    )
    mask.check_not_empty()
    return mask


def _check_scores_finite(scores: Scores) -> None:
    """Each layer's scores: non-empty 1-D tensors of finite numbers (NaN would rank arbitrarily)."""
    for i, layer in enumerate(scores.layers):
        for name in ("heads", "channels"):
            t = getattr(layer, name)
            if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() == 0:
                raise InvalidArgumentError(f"scores.layers[{i}].{name} must be a non-empty 1-D tensor, got "
                                           f"{describe(t)}")
            if not torch.isfinite(t).all():
                raise InvalidArgumentError(
                    f"scores.layers[{i}].{name} holds NaN or infinite values: the model's weights (or gradients, "
                    "for Taylor scores) are not finite; check the training run before drawing a mask.")


def _check_scope(scope: object) -> None:
    if not isinstance(scope, str) or scope not in SCOPES:
        raise InvalidArgumentError(f"unknown scope {describe(scope)} for `scope`; choose one of {SCOPES}")


def _resolve_head_dims(scores: Scores, head_dims: object) -> list[int]:
    """The scores' head dims; explicit `head_dims` must agree with them, and are required for hand-made scores."""
    n = len(scores.layers)
    if head_dims is None:
        if scores.head_dims is None:
            raise MaskMismatchError(
                "these scores carry no head_dims, so a head's weight (head_dim channels) is unknown: score with "
                "ebcore.score_model (it sets them), or pass head_dims=[b.head_dim for b in graph.blocks].")
        return list(scores.head_dims)
    given = check_head_dims(head_dims, n)
    if scores.head_dims is not None and given != scores.head_dims:
        raise MaskMismatchError(f"head_dims {given} contradict the head dims the scores were taken with "
                                f"{scores.head_dims}; leave head_dims out (the scores carry them).")
    return given


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


def random_mask(structure: list[tuple[int, ...]], ratio: float, seed: int = 0,
                head_dims: list[int] | None = None, align: int = 1, uniform: bool = False) -> Mask:
    """A layerwise mask at `ratio` with kept units drawn uniformly at random (the random control);
    `align` and `uniform` as in `mask_from_scores`.

    `structure` is (heads, channels, head_dim) per layer (e.g. `[(*s, hd) for s, hd in zip(mask.structure,
    mask.head_dims)]`), or (heads, channels) per layer with `head_dims` given.
    """
    ratio = check_ratio(ratio, "ratio")
    if not _is_int(seed):
        raise InvalidArgumentError(f"seed must be an integer, got {describe(seed)}")
    pairs, dims = _split_structure(structure, head_dims)
    if dims is None:
        raise MaskMismatchError("random_mask needs each layer's head dim: give structure as (heads, channels, "
                                "head_dim) tuples, or pass head_dims=[...] (one per layer).")
    gen = torch.Generator().manual_seed(int(seed))
    random_scores = Scores([LayerScores(torch.rand(h, generator=gen), torch.rand(c, generator=gen))
                            for h, c in pairs], criterion="random", head_dims=dims)
    mask = mask_from_scores(random_scores, ratio, align=align, uniform=uniform)
    return Mask(mask.layers, meta={**mask.meta, "seed": seed})


def _check_same_structure(a: Mask, b: Mask) -> None:
    if a.structure != b.structure:
        raise MaskMismatchError(f"masks of different models cannot be compared: {a.structure} vs {b.structure}")
    if a.head_dims != b.head_dims:
        raise MaskMismatchError(f"masks with different head dims cannot be compared: {a.head_dims} vs {b.head_dims}; "
                                "draw both with ebcore.draw_mask / score_model, which set the model's head dims.")


def _check_same_align(a: Mask, b: Mask) -> None:
    for key, default in (("align", 1), ("uniform", False)):  # masks saved before a rule existed: its default
        ra, rb = a.meta.get(key, default), b.meta.get(key, default)
        if ra != rb:
            raise MaskMismatchError(f"masks drawn under different rules cannot be compared: {key}={ra} vs "
                                    f"{key}={rb}; draw both with the same {key}.")


def mask_distance(a: Mask, b: Mask) -> dict[str, float]:
    """Normalized Hamming distance between two masks of the same model.

    `heads`: fraction of heads whose keep/prune decision differs; `channels`: same for FFN channels;
    `combined`: over the channels structured pruning removes, a head counting as its head_dim input
    channels of o_proj (so each decision weighs by the compute it controls).
    """
    a, b = as_mask(a, "a"), as_mask(b, "b")
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
    if not isinstance(kind, str) or kind not in DISTANCE_KINDS:
        raise InvalidArgumentError(f"unknown distance {describe(kind)} for `kind`; choose one of {DISTANCE_KINDS}")
    if isinstance(masks, (str, bytes, dict, Mask)) or not hasattr(masks, "__iter__"):
        raise InvalidArgumentError(f"masks must be a list of Mask, got {describe(masks)}")
    masks = [as_mask(m, f"masks[{i}]") for i, m in enumerate(masks)]
    n = len(masks)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = mask_distance(masks[i], masks[j])[kind]
    return out


def draw_mask(model: nn.Module | ModelGraph, ratio: float | None = None, *, head_ratio: float | None = None,
              ffn_ratio: float | None = None, scope: str = "layerwise", criterion: str = "magnitude",
              align: int = 1, uniform: bool = False) -> Mask:
    """The common case in one call: build the dependency graph of `model` (or take a ModelGraph), score it
    with `criterion` and draw the mask at `ratio` (or `head_ratio` / `ffn_ratio`) in `scope`, with the
    model's head dims and kept sizes rounded to multiples of `align` (see mask_from_scores); with `uniform`, the
    same widths in every layer of one shape, heads grouped by each block's `head_group`. The model is not modified
    (an unprepared GPT-2 is refused: call prepare_model first, before building the optimizer)."""
    _check_scope(scope)
    if ratio is None and (head_ratio is None or ffn_ratio is None):
        raise InvalidRatioError("give `ratio`, or both `head_ratio` and `ffn_ratio`")
    for name, value in (("ratio", ratio), ("head_ratio", head_ratio), ("ffn_ratio", ffn_ratio)):
        if value is not None:
            check_ratio(value, name)  # before the (slower) graph build
    graph = as_graph(model, "model")
    scores = score_model(graph, criterion)
    groups = [b.head_group for b in graph.blocks] if uniform else None
    return mask_from_scores(scores, ratio, head_ratio=head_ratio, ffn_ratio=ffn_ratio, scope=scope, align=align,
                            uniform=uniform, head_groups=groups)
