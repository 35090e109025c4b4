"""Per-family knowledge of Hugging Face Transformers: where the blocks are, which linears form the
attention heads and the FFN, and which attributes must be patched after heads are removed.

Everything else in ebcore is family-neutral and goes through `get_adapter(model)`.

    adapter = get_adapter(model)           # UnsupportedModelError for anything else
    for block in adapter.blocks(model):    # BlockSpec per Transformer layer
        block.o_proj, block.fc2, block.num_heads, block.head_dim
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from .blocks import BlockSpec, FamilyAdapter, in_features, text_inputs, tracing_generator
from .decoders import DECODER_ADAPTERS
from .errors import UnsupportedModelError

__all__ = ["ADAPTERS", "BlockSpec", "FamilyAdapter", "SUPPORTED_CLASSES", "conv1d_to_linear", "family_of",
           "get_adapter", "in_features", "needs_preparation", "prepare_model"]


# --- ViT and Swin: q_proj/k_proj/v_proj/o_proj + mlp.fc1/fc2 (transformers 5 names) ---------------

def _vit_blocks(model: nn.Module) -> list[BlockSpec]:
    return [_qkvo_block(f"vit.layers.{i}", layer) for i, layer in enumerate(model.vit.layers)]


def _swin_blocks(model: nn.Module) -> list[BlockSpec]:
    blocks = []
    for s, stage in enumerate(model.swin.encoder.layers):
        for b, layer in enumerate(stage.blocks):
            spec = _qkvo_block(f"swin.encoder.layers.{s}.blocks.{b}", layer)
            spec.position_bias_owner = layer.attention.relative_position_bias
            blocks.append(spec)
    return blocks


def _qkvo_block(name: str, layer: nn.Module) -> BlockSpec:
    att = layer.attention
    return BlockSpec(
        name=name, attention=att, qkv=(att.q_proj, att.k_proj, att.v_proj), o_proj=att.o_proj,
        fc1=layer.mlp.fc1, fc2=layer.mlp.fc2, head_dim=int(att.head_dim), num_heads_attr="num_attention_heads",
    )


def _patch_vit(block: BlockSpec, kept: list[int]) -> None:
    # head_dim and scaling stay as built: only the number of heads changes.
    block.attention.num_attention_heads = len(kept)


def _patch_swin(block: BlockSpec, kept: list[int]) -> None:
    _patch_vit(block, kept)
    owner = block.position_bias_owner
    table = owner.relative_position_bias_table  # (positions, heads)
    if table.shape[1] != len(kept):  # not yet sliced (a fresh graph keeps the table out of Torch-Pruning)
        idx = torch.as_tensor(kept, device=table.device)
        owner.relative_position_bias_table = nn.Parameter(table.data.index_select(1, idx).clone(),
                                                          requires_grad=table.requires_grad)


def _image_inputs(model: nn.Module) -> dict:
    cfg = model.config
    size = cfg.image_size if isinstance(cfg.image_size, int) else cfg.image_size[0]
    return {"pixel_values": torch.randn(1, cfg.num_channels, size, size, generator=tracing_generator())}


# --- RoBERTa and BERT: attention.self.{query,key,value}, attention.output.dense, intermediate/output --

def _bert_like_blocks(model: nn.Module) -> list[BlockSpec]:
    base = model.base_model
    prefix = model.base_model_prefix
    blocks = []
    for i, layer in enumerate(base.encoder.layer):
        att = layer.attention.self
        blocks.append(BlockSpec(
            name=f"{prefix}.encoder.layer.{i}", attention=att, qkv=(att.query, att.key, att.value),
            o_proj=layer.attention.output.dense, fc1=layer.intermediate.dense, fc2=layer.output.dense,
            head_dim=int(att.attention_head_size), num_heads_attr="num_attention_heads",
        ))
    return blocks


def _patch_bert_like(block: BlockSpec, kept: list[int]) -> None:
    block.attention.num_attention_heads = len(kept)
    block.attention.all_head_size = len(kept) * block.head_dim


# --- GPT-2: fused c_attn (converted from Conv1D to Linear), attn.c_proj, mlp.c_fc/c_proj ------------

def _gpt2_blocks(model: nn.Module, allow_conv1d: bool = False) -> list[BlockSpec]:
    blocks = []
    for i, layer in enumerate(model.transformer.h):
        att = layer.attn
        modules = (att.c_attn, att.c_proj, layer.mlp.c_fc, layer.mlp.c_proj)
        if not allow_conv1d and any(isinstance(m, Conv1D) for m in modules):
            raise UnsupportedModelError(
                "GPT-2 block still uses transformers' Conv1D; call ebcore.adapters.prepare_model(model) first "
                "(it converts Conv1D to nn.Linear exactly)."
            )
        if getattr(att, "is_cross_attention", False):
            raise UnsupportedModelError("GPT-2 with cross-attention is not supported.")
        blocks.append(BlockSpec(
            name=f"transformer.h.{i}", attention=att, qkv=(att.c_attn,), o_proj=att.c_proj,
            fc1=layer.mlp.c_fc, fc2=layer.mlp.c_proj, head_dim=int(att.head_dim), num_heads_attr="num_heads",
        ))
    return blocks


def _patch_gpt2(block: BlockSpec, kept: list[int]) -> None:
    att = block.attention
    att.num_heads = len(kept)
    att.split_size = len(kept) * block.head_dim  # c_attn output is split into q, k, v of this width
    att.embed_dim = len(kept) * block.head_dim   # only read in __init__ and cross-attention; kept consistent


ADAPTERS: dict[str, FamilyAdapter] = {
    "vit": FamilyAdapter("vit", ("vit",), ("ViTForImageClassification",), _vit_blocks, _image_inputs, _patch_vit),
    "swin": FamilyAdapter("swin", ("swin",), ("SwinForImageClassification",), _swin_blocks, _image_inputs,
                          _patch_swin),
    "gpt2": FamilyAdapter("gpt2", ("gpt2",), ("GPT2LMHeadModel", "GPT2ForSequenceClassification"), _gpt2_blocks,
                          text_inputs, _patch_gpt2),
    "roberta": FamilyAdapter("roberta", ("roberta",), ("RobertaForSequenceClassification",), _bert_like_blocks,
                             text_inputs, _patch_bert_like),
    "bert": FamilyAdapter("bert", ("bert",), ("BertForSequenceClassification",), _bert_like_blocks, text_inputs,
                          _patch_bert_like),
    **DECODER_ADAPTERS,
}
SUPPORTED_CLASSES = tuple(c for a in ADAPTERS.values() for c in a.class_names)


def get_adapter(model: nn.Module) -> FamilyAdapter:
    """The adapter for `model`, or an UnsupportedModelError naming the supported classes."""
    cls = type(model).__name__
    for adapter in ADAPTERS.values():
        if cls in adapter.class_names:
            return adapter
    raise UnsupportedModelError(
        f"ebcore does not know how to prune {cls}. Supported model classes: {', '.join(SUPPORTED_CLASSES)}. "
        "To add a family, write a FamilyAdapter in ebcore/adapters.py."
    )


def family_of(model: nn.Module) -> str:
    return get_adapter(model).family


@torch.no_grad()
def conv1d_to_linear(model: nn.Module) -> int:
    """Replace every transformers Conv1D by an equivalent nn.Linear (weight transposed; exact).

    Torch-Pruning does not prune Conv1D. Returns the number of modules replaced.
    """
    replaced = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                in_features, out_features = child.weight.shape  # Conv1D stores (in, out)
                # skip_init: no random init, so the conversion leaves the global RNG alone
                linear = torch.nn.utils.skip_init(nn.Linear, in_features, out_features, bias=child.bias is not None,
                                                  device=child.weight.device, dtype=child.weight.dtype)
                linear.weight.copy_(child.weight.t())
                if child.bias is not None:
                    linear.bias.copy_(child.bias)
                linear.weight.requires_grad_(child.weight.requires_grad)
                if child.bias is not None:
                    linear.bias.requires_grad_(child.bias.requires_grad)
                setattr(parent, child_name, linear)
                replaced += 1
    return replaced


def needs_preparation(model: nn.Module) -> bool:
    """True if `prepare_model` would replace modules (and so parameters) of `model`."""
    return get_adapter(model).family == "gpt2" and any(isinstance(m, Conv1D) for m in model.modules())


def prepare_model(model: nn.Module) -> nn.Module:
    """Make `model` prunable in place (GPT-2: Conv1D -> Linear). Idempotent; outputs are unchanged."""
    adapter = get_adapter(model)
    if adapter.family == "gpt2":
        conv1d_to_linear(model)
    return model
