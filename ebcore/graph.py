"""Torch-Pruning dependency graph of a Hugging Face model, and the two groups ebcore works with per
layer: the attention-head group (rooted at o_proj's input channels) and the FFN group (rooted at
fc2's input channels).

The graph is built once per model structure. Torch-Pruning traces through autograd, so the trace runs with
gradients enabled and every parameter temporarily requiring grad (a frozen encoder, or a call inside
`torch.no_grad()`, would otherwise leave modules out of the graph); every flag is restored exactly.
Two fixes over Torch-Pruning 1.6.1 live here:
- Swin's relative_position_bias_table is kept out of the graph (else the whole head group is
  silently dropped); surgery slices it by hand.
- GPT-2's fused `c_attn(x).split(E, dim=2)` is on the last dim, which Torch-Pruning 1.6.1 does not
  index-map (it maps splits on dim 1 only): we add the mapping so q/k/v rows follow the heads.
- Grouped-query attention (Llama, Qwen2, Mistral, Gemma): the graph couples q, k, v and o channel by
  channel, as if k/v had one head per query head (k/v are `group_size` times narrower). For grouped blocks
  the head group keeps only q's rows and o's columns, and the KV group (`kv_group`) only k's and v's rows
  (each from its own group: with Mistral's sliding window the graph does not couple v to k); the wrongly
  mapped members are dropped, and surgery checks what is left against the mask.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.dependency.index_mapping import _SplitIndexMapping

from .adapters import BlockSpec, FamilyAdapter, get_adapter, prepare_model
from .errors import InvalidArgumentError, describe


def _logits(output):
    return output.logits if hasattr(output, "logits") else output[0]


def _map_last_dim_splits(graph: tp.DependencyGraph) -> int:
    """Add index mappings for torch.split on a tensor's last dim (Torch-Pruning maps dim 1 only)."""
    mapped = 0
    for node in graph.module2node.values():
        if node.type != tp.ops.OPTYPE.SPLIT:
            continue
        grad_fn = node.grad_fn
        sizes = getattr(grad_fn, "_saved_self_sym_sizes", None)
        dim = getattr(grad_fn, "_saved_dim", None)
        if sizes is None or dim is None or dim in (1, -len(sizes) + 1) or dim not in (len(sizes) - 1, -1):
            continue  # dim 1 is handled by Torch-Pruning itself; other dims are not channels
        split = getattr(grad_fn, "_saved_split_size", None)
        if split is None:
            continue
        offsets = [0]
        for _ in node.outputs:
            offsets.append(offsets[-1] + int(split))
        node.module.split_sizes = [int(split)] * len(node.outputs)
        node.module.offsets = offsets
        for i, out_node in enumerate(node.outputs):
            for dep in node.dependencies:
                if dep.target is out_node:
                    dep.index_mapping[0] = _SplitIndexMapping(offset=offsets[i:i + 2], reverse=False)
                    break
            for dep in out_node.dependencies:
                if dep.target is node:
                    dep.index_mapping[0] = _SplitIndexMapping(offset=offsets[i:i + 2], reverse=True)
                    break
        mapped += 1
    return mapped


@dataclass
class ModelGraph:
    """A prepared model, its adapter, its blocks and its dependency graph."""

    model: nn.Module
    adapter: FamilyAdapter
    blocks: list[BlockSpec]
    dg: tp.DependencyGraph

    @classmethod
    def build(cls, model: nn.Module, prepare: bool = True) -> "ModelGraph":
        """Trace `model`'s dependency graph; with `prepare`, first make it prunable in place (GPT-2:
        Conv1D -> Linear, exact). Without it, an unprepared GPT-2 is an error: converting a model while
        an optimizer holds its old parameters would silently stop training them."""
        adapter = get_adapter(model)
        if not isinstance(prepare, bool):
            raise InvalidArgumentError(f"prepare must be True or False, got {describe(prepare)}")
        if prepare:
            prepare_model(model)
        blocks = adapter.blocks(model)
        ignored = [b.position_bias_owner.relative_position_bias_table for b in blocks
                   if b.position_bias_owner is not None]
        was_training = model.training
        frozen = [p for p in model.parameters() if not p.requires_grad]
        model.eval()
        try:
            for p in frozen:
                p.requires_grad_(True)  # a frozen module has no grad_fn in the trace: it would be left out
            with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
                warnings.simplefilter("ignore")  # "unwrapped parameters" notes: embeddings, never pruned here
                dg = tp.DependencyGraph().build_dependency(
                    model, example_inputs=adapter.example_inputs(model), output_transform=_logits,
                    ignored_params=ignored,
                )
        finally:
            for p in frozen:
                p.requires_grad_(False)
            model.train(was_training)
        _map_last_dim_splits(dg)
        return cls(model=model, adapter=adapter, blocks=blocks, dg=dg)

    @property
    def family(self) -> str:
        return self.adapter.family

    def head_group(self, block: BlockSpec, channel_idxs: list[int]) -> tp.dependency.Group:
        """Group of o_proj input channels `channel_idxs` (whole heads expand to head_dim channels). In a
        grouped (GQA) block: only q's rows and o's columns (k/v are shared by a KV group, see `kv_group`)."""
        group = self.dg.get_pruning_group(block.o_proj, tp.prune_linear_in_channels, idxs=list(channel_idxs))
        return _without(group, block.qkv[1:]) if block.grouped else group

    def kv_group(self, block: BlockSpec, kv_channel_idxs: list[int]) -> tp.dependency.Group:
        """Grouped (GQA) blocks: k's and v's rows `kv_channel_idxs` (KV head j covers [j*hd, (j+1)*hd))."""
        if not block.grouped:
            raise InvalidArgumentError(f"{block.name} has no grouped-query attention: its heads are in head_group")
        out = _without(tp.dependency.Group(), ())
        out._DG = self.dg
        for proj in block.qkv[1:]:  # k's rows from k's group, v's from v's (the graph does not always couple them)
            group = self.dg.get_pruning_group(proj, tp.prune_linear_out_channels, idxs=list(kv_channel_idxs))
            out._group += [item for item in group.items if item.dep.target.module is proj]
        return out

    def ffn_group(self, block: BlockSpec, channel_idxs: list[int]) -> tp.dependency.Group:
        """Group of fc2 input channels `channel_idxs` (and the matching output channels of fc1 and the gate)."""
        return self.dg.get_pruning_group(block.fc2, tp.prune_linear_in_channels, idxs=list(channel_idxs))

    def structure(self) -> list[tuple[int, int]]:
        """(heads, ffn channels) per layer, as the model is now."""
        return [(b.num_heads, b.num_channels) for b in self.blocks]


def _without(group: tp.dependency.Group, modules: tuple[nn.Module, ...]) -> tp.dependency.Group:
    """`group` less its members that act on `modules` (same items, root indices kept)."""
    out = tp.dependency.Group()
    out._DG = group._DG
    for item in group.items:
        if not any(item.dep.target.module is m for m in modules):
            out._group.append(item)
    return out


def head_channels(heads: list[int] | torch.Tensor, head_dim: int) -> list[int]:
    """o_proj input channel indices of the given heads: head h covers [h*hd, (h+1)*hd)."""
    return [h * head_dim + d for h in sorted(int(x) for x in heads) for d in range(head_dim)]


def group_modules(group: tp.dependency.Group) -> dict[nn.Module, list[int]]:
    """Prunable modules of a group with the indices each would lose (graph-internal ops left out)."""
    out: dict[nn.Module, list[int]] = {}
    for dep, idxs in group:
        module = dep.target.module
        if isinstance(module, (nn.Linear, nn.LayerNorm, nn.Embedding, nn.Conv2d)):
            out.setdefault(module, sorted(set(int(i) for i in idxs)))
    return out
