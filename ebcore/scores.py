"""Importance scores per attention head and per FFN channel, from Torch-Pruning importance criteria
applied to dependency-graph groups. No pruner is involved (a pruner's state changes on every step).

    scores = score_model(model)                  # group magnitude (L2), the default; builds the graph
    graph = ModelGraph.build(model)              # or build the graph once and score it at every check
    scores = score_model(graph, "taylor")        # needs .grad on the weights (after backward)

`Scores` carry the head dim of every layer, so a mask drawn from them weighs a head as head_dim channels,
and its group size (query heads per KV head; 1 without grouped-query attention), so a mask drawn from them
keeps the same number of query heads in every KV group. A grouped block's head score averages q's rows,
o's columns and the k/v rows of the head's KV group, as the coupled q/k/v/o group of any other block does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from .errors import InvalidArgumentError, describe
from .graph import ModelGraph

CRITERIA = ("magnitude", "taylor")


@dataclass
class LayerScores:
    heads: torch.Tensor     # (H,) mean channel importance of each head
    channels: torch.Tensor  # (F,) importance of each FFN channel


@dataclass
class Scores:
    """Scores of one model at one moment; `layers[i]` belongs to block i, whose heads are
    `head_dims[i]` channels wide (set by `score_model`; None only for hand-made scores)."""

    layers: list[LayerScores]
    criterion: str
    head_dims: list[int] | None = None
    group_sizes: list[int] | None = None  # query heads per KV head of each layer; None: 1 everywhere

    def __post_init__(self) -> None:
        if not isinstance(self.layers, (list, tuple)) or not all(isinstance(s, LayerScores) for s in self.layers):
            raise InvalidArgumentError(f"Scores.layers must be a list of LayerScores, got {describe(self.layers)}")
        self.layers = list(self.layers)
        if self.head_dims is not None:
            self.head_dims = check_head_dims(self.head_dims, len(self.layers))
        if self.group_sizes is not None:
            self.group_sizes = check_group_sizes(self.group_sizes, [len(s.heads) for s in self.layers])

    @property
    def structure(self) -> list[tuple[int, int]]:
        return [(len(s.heads), len(s.channels)) for s in self.layers]


def check_head_dims(head_dims: object, n_layers: int, name: str = "head_dims") -> list[int]:
    """`head_dims` as a list of `n_layers` positive ints, or InvalidArgumentError."""
    if not isinstance(head_dims, (list, tuple)) or len(head_dims) != n_layers or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in head_dims):
        raise InvalidArgumentError(
            f"{name} must be a list of {n_layers} positive integers (the head size of each layer, e.g. "
            f"[b.head_dim for b in ModelGraph.build(model).blocks]), got {describe(head_dims)}")
    return [int(h) for h in head_dims]


def check_group_sizes(group_sizes: object, num_heads: list[int], name: str = "group_sizes") -> list[int]:
    """`group_sizes` as a list of positive ints, one per layer, each dividing that layer's head count."""
    n = len(num_heads)
    if not isinstance(group_sizes, (list, tuple)) or len(group_sizes) != n or not all(
            isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in group_sizes):
        raise InvalidArgumentError(
            f"{name} must be a list of {n} positive integers (query heads per KV head of each layer, e.g. "
            f"[b.group_size for b in ModelGraph.build(model).blocks]), got {describe(group_sizes)}")
    bad = [(i, h, g) for i, (h, g) in enumerate(zip(num_heads, group_sizes)) if h % g]
    if bad:
        i, h, g = bad[0]
        raise InvalidArgumentError(f"{name}[{i}]={g} does not divide layer {i}'s {h} heads into KV groups")
    return [int(g) for g in group_sizes]


def _importance(criterion: str) -> tp.importance.Importance:
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise InvalidArgumentError(f"unknown importance criterion {describe(criterion)} for `criterion`; "
                                   f"choose one of {CRITERIA}")
    if criterion == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None)
    return tp.importance.GroupTaylorImportance(group_reduction="mean", normalizer=None)


def _has_grads(graph: ModelGraph) -> bool:
    return all(b.fc2.weight.grad is not None and b.o_proj.weight.grad is not None for b in graph.blocks)


def as_graph(source: object, name: str = "graph") -> ModelGraph:
    """A ModelGraph as is, or the graph of a supported model (built without converting it: an
    unprepared GPT-2 is refused, since swapping its parameters would detach them from an optimizer)."""
    if isinstance(source, ModelGraph):
        return source
    if isinstance(source, nn.Module):
        return ModelGraph.build(source, prepare=False)
    raise InvalidArgumentError(f"{name} must be a ModelGraph or a supported Hugging Face model, got "
                               f"{describe(source)}; pass the model (or ModelGraph.build(model)).")


@torch.no_grad()
def score_model(graph: ModelGraph | nn.Module, criterion: str = "magnitude") -> Scores:
    """Importance of every head and FFN channel of the model, as it is now.

    `graph` is a ModelGraph (build it once when scoring often) or the model itself (its graph is built
    here). The returned Scores carry each layer's head dim.
    """
    importance = _importance(criterion)
    graph = as_graph(graph)
    if criterion == "taylor" and not _has_grads(graph):
        raise InvalidArgumentError("Taylor importance needs gradients: call loss.backward() before scoring, "
                                   "or use criterion='magnitude'.")
    pieces = []  # per block: (H,) head scores, (F,) channel scores, still on the model's device
    for block in graph.blocks:
        heads, hd = block.num_heads, block.head_dim
        head_group, ffn_group, kv_group = _whole_groups(graph, block)
        head_channel_scores = importance(head_group).float()  # (H*hd,)
        if kv_group is not None:  # GQA: mean of q/o (this head) and k/v (its KV group), as a q/k/v/o group would
            kv_scores = importance(kv_group).float().view(block.kv_heads, 1, hd)  # (KV, 1, hd)
            per_head = kv_scores.expand(-1, block.group_size, -1).reshape(heads * hd)  # (H*hd,)
            head_channel_scores = (head_channel_scores + per_head) / 2
        ffn_scores = importance(ffn_group)  # (F,)
        pieces += [head_channel_scores.view(heads, hd).mean(dim=1), ffn_scores.float()]
    return Scores(layers=_to_cpu_once(pieces), criterion=criterion, head_dims=[b.head_dim for b in graph.blocks],
                  group_sizes=[b.group_size for b in graph.blocks])


def _whole_groups(graph: ModelGraph, block) -> tuple[tp.dependency.Group, tp.dependency.Group,
                                                     tp.dependency.Group | None]:
    """The groups of all head channels, all FFN channels and (GQA) all KV channels of `block`, built once per graph and
    block size (building a group walks the dependency graph on the host, about half of a pass on CPU;
    importance reads the weights and gradients at call time, so cached groups stay current)."""
    cache = graph.__dict__.setdefault("_whole_groups", {})
    key = (id(block.o_proj), id(block.fc2), block.num_heads, block.kv_heads, block.head_dim, block.num_channels)
    if key not in cache:
        cache[key] = (graph.head_group(block, list(range(block.num_heads * block.head_dim))),
                      graph.ffn_group(block, list(range(block.num_channels))),
                      graph.kv_group(block, list(range(block.kv_heads * block.head_dim))) if block.grouped else None)
    return cache[key]


def _to_cpu_once(pieces: list[torch.Tensor]) -> list[LayerScores]:
    """[heads_0, channels_0, heads_1, ...] (1-D, on any one device) -> LayerScores on the CPU, with one
    device-to-host copy for the whole pass (no synchronisation per block)."""
    sizes = [p.numel() for p in pieces]
    flat = torch.cat(pieces).cpu() if pieces else torch.zeros(0)  # (sum of sizes,)
    parts = list(torch.split(flat, sizes))
    return [LayerScores(heads=parts[i], channels=parts[i + 1]) for i in range(0, len(parts), 2)]
