"""Importance scores per attention head and per FFN channel, from Torch-Pruning importance criteria
applied to dependency-graph groups. No pruner is involved (a pruner's state changes on every step).

    graph = ModelGraph.build(model)
    scores = score_model(graph)                  # group magnitude (L2), the default
    scores = score_model(graph, "taylor")        # needs .grad on the weights (after backward)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp

from .graph import ModelGraph

CRITERIA = ("magnitude", "taylor")


@dataclass
class LayerScores:
    heads: torch.Tensor     # (H,) mean channel importance of each head
    channels: torch.Tensor  # (F,) importance of each FFN channel


@dataclass
class Scores:
    """Scores of one model at one moment; `layers[i]` belongs to block i."""

    layers: list[LayerScores]
    criterion: str

    @property
    def structure(self) -> list[tuple[int, int]]:
        return [(len(s.heads), len(s.channels)) for s in self.layers]


def _importance(criterion: str) -> tp.importance.Importance:
    if criterion == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None)
    if criterion == "taylor":
        return tp.importance.GroupTaylorImportance(group_reduction="mean", normalizer=None)
    raise ValueError(f"unknown importance criterion {criterion!r}; choose one of {CRITERIA}")


def _has_grads(graph: ModelGraph) -> bool:
    return all(b.fc2.weight.grad is not None and b.o_proj.weight.grad is not None for b in graph.blocks)


@torch.no_grad()
def score_model(graph: ModelGraph, criterion: str = "magnitude") -> Scores:
    """Importance of every head and FFN channel of the graph's model, as it is now."""
    importance = _importance(criterion)
    if criterion == "taylor" and not _has_grads(graph):
        raise ValueError("Taylor importance needs gradients: call loss.backward() before scoring, "
                         "or use criterion='magnitude'.")
    pieces = []  # per block: (H,) head scores, (F,) channel scores, still on the model's device
    for block in graph.blocks:
        heads, hd = block.num_heads, block.head_dim
        head_group, ffn_group = _whole_groups(graph, block)
        head_channel_scores = importance(head_group)  # (H*hd,)
        ffn_scores = importance(ffn_group)  # (F,)
        pieces += [head_channel_scores.float().view(heads, hd).mean(dim=1), ffn_scores.float()]
    return Scores(layers=_to_cpu_once(pieces), criterion=criterion)


def _whole_groups(graph: ModelGraph, block) -> tuple[tp.dependency.Group, tp.dependency.Group]:
    """The groups of all head channels and all FFN channels of `block`, built once per graph and
    block size (building a group walks the dependency graph on the host, about half of a pass on CPU;
    importance reads the weights and gradients at call time, so cached groups stay current)."""
    cache = graph.__dict__.setdefault("_whole_groups", {})
    key = (id(block.o_proj), id(block.fc2), block.num_heads, block.head_dim, block.num_channels)
    if key not in cache:
        cache[key] = (graph.head_group(block, list(range(block.num_heads * block.head_dim))),
                      graph.ffn_group(block, list(range(block.num_channels))))
    return cache[key]


def _to_cpu_once(pieces: list[torch.Tensor]) -> list[LayerScores]:
    """[heads_0, channels_0, heads_1, ...] (1-D, on any one device) -> LayerScores on the CPU, with one
    device-to-host copy for the whole pass (no synchronisation per block)."""
    sizes = [p.numel() for p in pieces]
    flat = torch.cat(pieces).cpu() if pieces else torch.zeros(0)  # (sum of sizes,)
    parts = list(torch.split(flat, sizes))
    return [LayerScores(heads=parts[i], channels=parts[i + 1]) for i in range(0, len(parts), 2)]
