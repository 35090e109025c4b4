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
    layers = []
    for block in graph.blocks:
        heads, hd = block.num_heads, block.head_dim
        all_head_channels = list(range(heads * hd))
        head_channel_scores = importance(graph.head_group(block, all_head_channels))  # (H*hd,)
        ffn_scores = importance(graph.ffn_group(block, list(range(block.num_channels))))  # (F,)
        layers.append(LayerScores(
            heads=head_channel_scores.float().view(heads, hd).mean(dim=1).cpu(),  # (H,)
            channels=ffn_scores.float().cpu(),
        ))
    return Scores(layers=layers, criterion=criterion)
