"""What ebcore sees of one Transformer layer (`BlockSpec`) and of one model family (`FamilyAdapter`): the
linears that form the attention heads and the FFN, the head counts, and the family's patches after pruning.
The families themselves live in `ebcore.adapters` (encoders, GPT-2) and `ebcore.decoders` (GQA decoders).

    block.num_heads, block.head_dim        # query heads, channels per head
    block.kv_heads, block.group_size       # KV heads, query heads per KV head (1 without grouped-query attention)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D


@dataclass
class BlockSpec:
    """One Transformer layer seen as prunable structure.

    `qkv` holds the separate q/k/v projections, or one fused projection (GPT-2's c_attn) whose output
    is `[q | k | v]`, each `num_heads * head_dim` wide. `o_proj`'s input channels are the concatenated
    head outputs; `fc2`'s input channels are the FFN channels (`fc1` and, in a gated MLP, `gate` make them).

    `grouped` (decoders with grouped-query attention): k and v have `kv_heads` heads, each shared by
    `group_size` consecutive query heads (query head h reads KV head h // group_size). Pruning keeps the
    same number of query heads in every KV group; a KV group goes when all its query heads go.
    Without `num_heads_attr` the head count is read from q's width (Llama-style attention has no such attribute).
    """

    name: str
    attention: nn.Module  # the module holding the head-count attributes
    qkv: tuple[nn.Linear, ...]
    o_proj: nn.Linear
    fc1: nn.Linear
    fc2: nn.Linear
    head_dim: int
    num_heads_attr: str | None
    position_bias_owner: nn.Module | None = None  # Swin: module with relative_position_bias_table
    grouped: bool = False
    gate: nn.Linear | None = None  # gated MLP (Llama's gate_proj): pruned with fc1 (up_proj)

    @property
    def fused_qkv(self) -> bool:
        return len(self.qkv) == 1

    @property
    def num_heads(self) -> int:
        """Query heads."""
        if self.num_heads_attr is None:
            return int(self.qkv[0].out_features) // self.head_dim
        return int(getattr(self.attention, self.num_heads_attr))

    @property
    def kv_heads(self) -> int:
        """Key/value heads (= num_heads without grouped-query attention)."""
        if not self.grouped:
            return self.num_heads
        return int(self.qkv[1].out_features) // self.head_dim

    @property
    def group_size(self) -> int:
        """Query heads per KV head: masks keep the same number of query heads in each of the KV groups."""
        return self.num_heads // self.kv_heads

    @property
    def num_channels(self) -> int:
        return in_features(self.fc2)

    @property
    def ffn_in(self) -> tuple[nn.Linear, ...]:
        """The linears whose output rows are the FFN channels (fc1, and the gate of a gated MLP)."""
        return (self.fc1,) if self.gate is None else (self.fc1, self.gate)


def in_features(module: nn.Module) -> int:
    """Input width of an nn.Linear, or of a transformers Conv1D (weight stored (in, out))."""
    if isinstance(module, Conv1D):
        return int(module.weight.shape[0])
    return int(module.in_features)


@dataclass(frozen=True)
class FamilyAdapter:
    """How ebcore reads and patches one model family.

    `patch_fn(block, kept_heads)` runs after a block's heads are pruned; `finish_fn(model, blocks)` (optional)
    after the whole model is pruned (decoders: rewrite the config, check every attention module)."""

    family: str
    model_types: tuple[str, ...]
    class_names: tuple[str, ...]
    blocks_fn: Callable[..., list[BlockSpec]]
    example_inputs_fn: Callable[[nn.Module], dict]
    patch_fn: Callable[[BlockSpec, list[int]], None]  # after head pruning, with kept head indices
    finish_fn: Callable[[nn.Module, list[BlockSpec]], None] | None = None

    def blocks(self, model: nn.Module, allow_conv1d: bool = False) -> list[BlockSpec]:
        """The model's blocks. With `allow_conv1d`, an unprepared GPT-2's Conv1D layers are accepted (for
        read-only uses such as soft-mask hooks; Torch-Pruning cannot prune them)."""
        if self.family == "gpt2":
            return self.blocks_fn(model, allow_conv1d=allow_conv1d)
        return self.blocks_fn(model)

    def example_inputs(self, model: nn.Module) -> dict:
        """Tracing inputs on the model's device; floating inputs in the model's floating dtype (a bf16
        Swin's convolution refuses float32 pixels)."""
        params = list(model.parameters())
        device = params[0].device if params else torch.device("cpu")
        dtype = next((p.dtype for p in params if p.is_floating_point()), torch.get_default_dtype())
        out = {}
        for k, v in self.example_inputs_fn(model).items():
            if torch.is_tensor(v):
                v = v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)
            out[k] = v
        return out

    def patch_after_head_pruning(self, block: BlockSpec, kept_heads: list[int]) -> None:
        self.patch_fn(block, kept_heads)

    def finish_pruning(self, model: nn.Module, blocks: list[BlockSpec]) -> None:
        if self.finish_fn is not None:
            self.finish_fn(model, blocks)


def tracing_generator() -> torch.Generator:
    """Example inputs come from their own generator: tracing must not shift the global RNG (dropout,
    shuffling), or a run that traces at other moments (a resumed one) would diverge."""
    return torch.Generator().manual_seed(0)


def text_inputs(model: nn.Module) -> dict:
    """Tracing inputs of a text model: a few token ids (no padding)."""
    cfg = model.config
    length = max(2, min(8, getattr(cfg, "max_position_embeddings", getattr(cfg, "n_positions", 16)) - 4))
    low = min(4, cfg.vocab_size - 1)
    inputs = {"input_ids": torch.randint(low, cfg.vocab_size, (1, length), generator=tracing_generator())}
    if cfg.model_type == "gpt2":
        inputs["use_cache"] = False
    return inputs
