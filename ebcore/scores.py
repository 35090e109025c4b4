"""Importance scores per attention head and per FFN channel, from Torch-Pruning importance criteria
applied to dependency-graph groups. No pruner is involved (a pruner's state changes on every step).

    scores = score_model(model)                  # group magnitude (L2), the default; builds the graph
    graph = ModelGraph.build(model)              # or build the graph once and score it at every check
    scores = score_model(graph, "taylor")        # needs .grad on the weights (after backward)

`Scores` carry the head dim of every layer, so a mask drawn from them weighs a head as head_dim channels.
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

    def __post_init__(self) -> None:
        if not isinstance(self.layers, (list, tuple)) or not all(isinstance(s, LayerScores) for s in self.layers):
            raise InvalidArgumentError(f"Scores.layers must be a list of LayerScores, got {describe(self.layers)}")
        self.layers = list(self.layers)
        if self.head_dims is not None:
            self.head_dims = check_head_dims(self.head_dims, len(self.layers))

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
    return Scores(layers=layers, criterion=criterion, head_dims=[b.head_dim for b in graph.blocks])
