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

Under grouped-query attention a layer mask has a `group_size` (query heads per KV head) and keeps the same
number of query heads in every KV group, or none in a group (whose k/v rows then go); a LayerMask that breaks
this is refused (MaskMismatchError). Selection rules: `ebcore.selection`.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .align import check_align
from .errors import InvalidArgumentError, InvalidRatioError, MaskMismatchError, describe
from .graph import ModelGraph
from .scores import LayerScores, Scores, as_graph, check_group_sizes, check_head_dims, score_model
from .selection import keep_channels, keep_heads
from .uniform import uniform_channels

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
    group_size: int = 1  # query heads per KV head (grouped-query attention); 1: every head is its own group

    def __post_init__(self) -> None:
        for name in ("num_heads", "num_channels", "head_dim", "group_size"):
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
        if self.num_heads % self.group_size:
            raise InvalidArgumentError(f"LayerMask.group_size={self.group_size} does not divide num_heads="
                                       f"{self.num_heads} into KV groups")
        counts = {n for n in self.heads_per_group() if n}
        if len(counts) > 1:
            raise MaskMismatchError(
                f"the layer mask keeps {self.heads_per_group()} query heads in its {self.kv_heads} KV groups (heads "
                f"{self.heads}, {self.group_size} per group): under grouped-query attention every KV group must keep "
                "the same number of query heads, or none (to prune the group); draw masks with ebcore.draw_mask, "
                "mask_from_scores or random_mask, which follow this rule.")

    @property
    def kv_heads(self) -> int:
        """KV heads (groups) of the dense layer."""
        return self.num_heads // self.group_size

    def heads_per_group(self) -> list[int]:
        """Kept query heads in each KV group (query head h is in group h // group_size)."""
        counts = [0] * self.kv_heads
        for h in self.heads:
            counts[h // self.group_size] += 1
        return counts

    @property
    def kept_kv_groups(self) -> list[int]:
        """The KV groups that keep at least one query head (the others lose their k/v rows)."""
        return [j for j, n in enumerate(self.heads_per_group()) if n]

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
    def group_sizes(self) -> list[int]:
        """Query heads per KV head of every layer (1 without grouped-query attention)."""
        return [lm.group_size for lm in self.layers]

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
        """JSON-ready dict; a layer's "group_size" is written only when it is above 1 (grouped-query attention),
        so masks of other models keep the keys (and hashes) they always had."""
        return {
            "format": "ebcore.mask/1",
            "meta": self.meta,
            "layers": [{"heads": list(lm.heads), "channels": list(lm.channels), "num_heads": lm.num_heads,
                        "num_channels": lm.num_channels, "head_dim": lm.head_dim,
                        **({"group_size": lm.group_size} if lm.group_size > 1 else {})} for lm in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Mask":
        if not isinstance(data, dict) or data.get("format") != "ebcore.mask/1":
            raise MaskMismatchError("not an ebcore mask (expected a dict with format 'ebcore.mask/1')")
        keys = {"heads", "channels", "num_heads", "num_channels", "head_dim"}
        layers = data.get("layers")
        if not isinstance(layers, list) or not all(isinstance(lm, dict) and set(lm) - {"group_size"} == keys
                                                   for lm in layers):
            raise MaskMismatchError(f"a saved mask's 'layers' must be a list of dicts with keys {sorted(keys)} (and "
                                    f"'group_size' under grouped-query attention), got {describe(layers)}")
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
    def full(cls, structure: list[tuple[int, ...]], head_dims: list[int] | None = None,
             group_sizes: list[int] | None = None) -> "Mask":
        """The mask that keeps everything of a model with the given (heads, channels) or
        (heads, channels, head_dim) per layer (head dims 1 if neither the structure nor `head_dims` has them;
        group sizes 1 unless given)."""
        pairs, dims = _split_structure(structure, head_dims)
        dims = dims or [1] * len(pairs)
        groups = _group_sizes(group_sizes, pairs)
        return cls(layers=tuple(LayerMask(tuple(range(h)), tuple(range(c)), h, c, hd, g)
                                for (h, c), hd, g in zip(pairs, dims, groups)))


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


def _group_sizes(group_sizes: object, pairs: list[tuple[int, int]]) -> list[int]:
    """`group_sizes` checked against the layers' head counts; 1 per layer when None."""
    if group_sizes is None:
        return [1] * len(pairs)
    return check_group_sizes(group_sizes, [h for h, _ in pairs])


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


def mask_from_scores(scores: Scores, ratio: float | None = None, *, head_ratio: float | None = None,
                     ffn_ratio: float | None = None, scope: str = "layerwise",
                     head_dims: list[int] | None = None, align: int = 1, kv_groups: bool = False,
                     uniform: bool = False) -> Mask:
    """Draw a mask that prunes the lowest-scoring `ratio` of heads and of FFN channels.

    `head_ratio` / `ffn_ratio` override `ratio` for heads / channels. `scope` is "layerwise" (each layer
    loses the same fraction) or "global" (one ranking over all layers, scores normalized per layer).
    Head dims come from `scores` (score_model sets them); `head_dims` is only needed for hand-made
    scores, and must agree with the scores' own otherwise.
    `align` (N >= 1): round each layer's kept FFN channels, and its kept heads in units whose width
    heads * head_dim is a multiple of N, by the rule of `ebcore.align` (needs `head_dims` when N > 1);
    recorded in `meta["align"]`.
    Grouped-query attention (the scores' `group_sizes` > 1): every KV group keeps the same number of query
    heads, the ratio applied inside each group; with `kv_groups=True` whole KV groups are pruned instead
    (see `ebcore.selection`).
    `uniform`: one width per layer shape, the form a plain Hugging Face config can hold (see
    `ebcore.io.save_pruned(format="hf")`): FFN channels keep one fraction in every layer (`ebcore.uniform`),
    heads follow the layerwise rule (layers with the same heads and KV groups keep the same count); units are
    still chosen by score within each layer. Needs scope="layerwise" (uniform counts leave nothing for a
    global ranking to decide). Recorded in `meta["uniform"]`.
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
    if not isinstance(kv_groups, bool):
        raise InvalidArgumentError(f"kv_groups must be True or False, got {describe(kv_groups)}")
    head_scores = [s.heads for s in scores.layers]
    ch_scores = [s.channels for s in scores.layers]
    groups = scores.group_sizes or [1] * len(head_scores)
    align = check_align(align)
    if not isinstance(uniform, bool):
        raise InvalidArgumentError(f"uniform must be True or False, got {describe(uniform)}")
    if uniform and scope != "layerwise":
        raise InvalidArgumentError(f"uniform=True needs scope='layerwise', got scope={scope!r}: uniform widths fix "
                                   "every layer's count, so a global ranking has nothing to decide (which units "
                                   "are kept is still chosen by score within each layer).")
    kept_heads = keep_heads(head_scores, hr, scope, head_dims, groups, align, kv_groups)
    kept_ch = uniform_channels(ch_scores, fr, align) if uniform else keep_channels(ch_scores, fr, scope, align)
    meta = {"head_ratio": hr, "ffn_ratio": fr, "scope": scope, "criterion": scores.criterion, "align": align}
    if kv_groups:
        meta["kv_groups"] = True
    if uniform:
        meta["uniform"] = True
    mask = Mask(
        layers=tuple(LayerMask(tuple(h), tuple(c), len(hs), len(cs), hd, g) for h, c, hs, cs, hd, g
                     in zip(kept_heads, kept_ch, head_scores, ch_scores, head_dims, groups)),
        meta=meta,
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


def random_mask(structure: list[tuple[int, ...]], ratio: float, seed: int = 0,
                head_dims: list[int] | None = None, align: int = 1, group_sizes: list[int] | None = None,
                kv_groups: bool = False, uniform: bool = False) -> Mask:
    """A layerwise mask at `ratio` with kept units drawn uniformly at random (the random control);
    `align`, `kv_groups` and `uniform` as in `mask_from_scores`; `group_sizes` (query heads per KV head of each
    layer, e.g. `mask.group_sizes` or `[b.group_size for b in graph.blocks]`) for grouped-query attention.

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
                            for h, c in pairs], criterion="random", head_dims=dims,
                           group_sizes=_group_sizes(group_sizes, pairs))
    mask = mask_from_scores(random_scores, ratio, align=align, kv_groups=kv_groups, uniform=uniform)
    return Mask(mask.layers, meta={**mask.meta, "seed": seed})


def _check_same_structure(a: Mask, b: Mask) -> None:
    if a.structure != b.structure:
        raise MaskMismatchError(f"masks of different models cannot be compared: {a.structure} vs {b.structure}")
    if a.head_dims != b.head_dims:
        raise MaskMismatchError(f"masks with different head dims cannot be compared: {a.head_dims} vs {b.head_dims}; "
                                "draw both with ebcore.draw_mask / score_model, which set the model's head dims.")
    if a.group_sizes != b.group_sizes:
        raise MaskMismatchError(f"masks with different KV group sizes cannot be compared: {a.group_sizes} vs "
                                f"{b.group_sizes}; draw both with ebcore.draw_mask / score_model.")


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
              align: int = 1, kv_groups: bool = False, uniform: bool = False) -> Mask:
    """The common case in one call: build the dependency graph of `model` (or take a ModelGraph), score it
    with `criterion` and draw the mask at `ratio` (or `head_ratio` / `ffn_ratio`) in `scope`, with the
    model's head dims and kept sizes rounded to multiples of `align` (see mask_from_scores; `kv_groups=True`
    prunes whole KV groups of a grouped-query-attention model; `uniform=True` keeps one width per layer shape,
    for save_pruned(format="hf")). The model is not modified (an unprepared GPT-2 is refused: call prepare_model
    first, before building the optimizer)."""
    _check_scope(scope)
    if ratio is None and (head_ratio is None or ffn_ratio is None):
        raise InvalidRatioError("give `ratio`, or both `head_ratio` and `ffn_ratio`")
    for name, value in (("ratio", ratio), ("head_ratio", head_ratio), ("ffn_ratio", ffn_ratio)):
        if value is not None:
            check_ratio(value, name)  # before the (slower) graph build
    scores = score_model(as_graph(model, "model"), criterion)
    return mask_from_scores(scores, ratio, head_ratio=head_ratio, ffn_ratio=ffn_ratio, scope=scope, align=align,
                            kv_groups=kv_groups, uniform=uniform)
