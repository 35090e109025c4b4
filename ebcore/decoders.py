"""Decoder LLMs with grouped-query attention (GQA): Llama, Qwen2, Mistral and Gemma, as causal LMs and
sequence classifiers (transformers 5.23 names: `model.layers[i].self_attn.{q,k,v,o}_proj`,
`mlp.{gate,up,down}_proj`).

The GQA rule: query head h reads KV head h // group_size. ebcore prunes query heads *within* KV groups, so
every KV group keeps the same number of query heads (a group that loses all of them is removed with its
k/v rows); head dims are never pruned (RoPE rotates pairs of channels inside a head). FFN channels of the
gated MLP go from gate_proj, up_proj and down_proj together.

    block = get_adapter(model).blocks(model)[0]
    block.num_heads, block.kv_heads, block.group_size      # 8, 2, 4 for 8 query heads on 2 KV heads

After pruning, each attention module's `num_key_value_groups` is set from its weights, the config's
`num_key_value_heads` / `num_attention_heads` become the smallest uniform GQA shape every layer fits in
(the exact shape when all layers keep the same heads), `head_dim` is written explicitly, and every
attention module is checked against its weights (PruningError otherwise). Phi-3 (fused qkv_proj and
gate_up_proj, head counts read from the config in forward) is not supported.
"""
from __future__ import annotations

from torch import nn

from .blocks import BlockSpec, FamilyAdapter, text_inputs
from .errors import PruningError

# family -> (config model_type, supported classes)
DECODER_FAMILIES: dict[str, tuple[str, ...]] = {
    "llama": ("LlamaForCausalLM", "LlamaForSequenceClassification"),
    "qwen2": ("Qwen2ForCausalLM", "Qwen2ForSequenceClassification"),
    "mistral": ("MistralForCausalLM", "MistralForSequenceClassification"),
    "gemma": ("GemmaForCausalLM", "GemmaForSequenceClassification"),
}


def decoder_blocks(model: nn.Module) -> list[BlockSpec]:
    """One grouped BlockSpec per decoder layer (q/k/v/o, up (fc1), gate, down (fc2))."""
    prefix = model.base_model_prefix
    blocks = []
    for i, layer in enumerate(model.base_model.layers):
        att, mlp = layer.self_attn, layer.mlp
        blocks.append(BlockSpec(
            name=f"{prefix}.layers.{i}", attention=att, qkv=(att.q_proj, att.k_proj, att.v_proj), o_proj=att.o_proj,
            fc1=mlp.up_proj, fc2=mlp.down_proj, gate=mlp.gate_proj, head_dim=int(att.head_dim), num_heads_attr=None,
            grouped=True,
        ))
    return blocks


def decoder_inputs(model: nn.Module) -> dict:
    """Tracing inputs: token ids, no KV cache (a cache object is not a tensor the graph can follow)."""
    return {**text_inputs(model), "use_cache": False}


def patch_decoder_attention(block: BlockSpec, kept: list[int]) -> None:
    """Set the attention module's head attributes from its (pruned) weights, then check them."""
    att = block.attention
    att.num_key_value_groups = block.num_heads // block.kv_heads
    for name, value in (("num_heads", block.num_heads), ("num_key_value_heads", block.kv_heads)):
        if hasattr(att, name):  # not in transformers 5.23's Llama/Qwen2/Mistral/Gemma attention; kept true if present
            setattr(att, name, value)
    check_decoder_attention(block)


def check_decoder_attention(block: BlockSpec) -> None:
    """PruningError unless the attention module's head counts agree with its weights: q and o cover
    num_heads * head_dim channels, k and v kv_heads * head_dim, and num_key_value_groups = num_heads / kv_heads."""
    att, hd = block.attention, block.head_dim
    q, k, v = block.qkv
    problems = []
    if int(getattr(att, "head_dim", hd)) != hd:
        problems.append(f"head_dim={att.head_dim}, expected {hd} (head dims are never pruned)")
    if q.out_features % hd or q.out_features != block.o_proj.in_features:
        problems.append(f"q_proj has {q.out_features} rows and o_proj {block.o_proj.in_features} columns, "
                        f"expected the same multiple of head_dim={hd}")
    if k.out_features % hd or k.out_features != v.out_features:
        problems.append(f"k_proj/v_proj have {k.out_features}/{v.out_features} rows, expected the same multiple of {hd}")
    heads, kv = q.out_features // hd, k.out_features // hd
    if not problems and (kv == 0 or heads % kv):
        problems.append(f"{heads} query heads cannot be split evenly over {kv} KV heads")
    if not problems and att.num_key_value_groups != heads // kv:
        problems.append(f"num_key_value_groups={att.num_key_value_groups}, but the weights hold {heads} query heads "
                        f"on {kv} KV heads ({heads // kv} per group)")
    for name, value in (("num_heads", heads), ("num_key_value_heads", kv)):
        if not problems and hasattr(att, name) and getattr(att, name) != value:
            problems.append(f"{name}={getattr(att, name)}, but the weights hold {value}")
    if problems:
        raise PruningError(f"{block.name}: the attention module disagrees with its weights after pruning: "
                           f"{'; '.join(problems)}. The model would compute wrong attention; report the model "
                           "configuration.")


def finish_decoder(model: nn.Module, blocks: list[BlockSpec]) -> None:
    """After pruning: rewrite the config's head counts and check every attention module.

    `num_key_value_heads` = the most KV heads of any layer, `num_attention_heads` = that times the largest
    group size: the smallest uniform GQA shape every layer fits in (exact when the layers agree), so a model
    built from the config can be shrunk to the saved per-layer structure. `head_dim` is written explicitly
    (it would otherwise be derived from hidden_size / num_attention_heads). FFN widths stay per layer in
    ebcore's structure file (`intermediate_size` keeps the dense width)."""
    dims = {b.head_dim for b in blocks}
    if len(dims) != 1:
        raise PruningError(f"the decoder's layers have different head dims {sorted(dims)}; head dims are never "
                           "pruned, so the model was changed outside ebcore")
    for block in blocks:
        check_decoder_attention(block)
    cfg = model.config
    kv = max(b.kv_heads for b in blocks)
    cfg.num_key_value_heads = kv
    cfg.num_attention_heads = kv * max(b.group_size for b in blocks)
    cfg.head_dim = dims.pop()


DECODER_ADAPTERS: dict[str, FamilyAdapter] = {
    family: FamilyAdapter(family, (family,), classes, decoder_blocks, decoder_inputs, patch_decoder_attention,
                          finish_decoder)
    for family, classes in DECODER_FAMILIES.items()
}
