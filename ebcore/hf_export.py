"""Portable checkpoints: write a pruned model as an ordinary Hugging Face checkpoint (config.json with the
pruned widths + model.safetensors) that `from_pretrained` loads without ebcore, where the family's config
can describe the pruned model. Reached through `ebcore.io.save_pruned(model, path, format="hf")`.

A stock config holds one width for every layer (Swin: one head count per stage and one `mlp_ratio`), so
the model must be pruned uniformly (`draw_mask(model, p, uniform=True)`). What each family's config can
express, read from its transformers 5 modeling code:

* FFN channels: every family (`intermediate_size`; GPT-2 `n_inner`; Swin `mlp_ratio`, one float for all
  stages: the kept width of each stage must be `int(mlp_ratio * stage_width)` for one ratio).
* Attention heads: only where the config can carry the head size, which pruning heads keeps unchanged.
  ViT reads `config.head_dim` (else hidden_size / heads); Llama, Qwen2, Mistral and Gemma read `head_dim`
  and `num_key_value_heads` (every layer must keep the same query and KV heads). BERT and RoBERTa compute
  hidden_size / num_attention_heads, GPT-2 n_embd / n_head and Swin stage_width / num_heads: with fewer
  heads the head size would grow and the weights would not fit, so their heads cannot be pruned here.

Nothing is trusted: the exported model is rebuilt from the written config by the stock class, loaded
strictly, and its outputs compared with the pruned model's, before and after the files are written.
Anything a config cannot express is refused with a `NotPortableError` that names the layer and the width.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import torch
from huggingface_hub.errors import StrictDataclassError
from torch import nn
from transformers import PretrainedConfig
from transformers.pytorch_utils import Conv1D
from transformers.utils import logging as hf_logging

from .adapters import BlockSpec, get_adapter
from .decoders import DECODER_FAMILIES
from .errors import CheckpointError, NotPortableError
from .files import atomic_folder

WHAT_WORKS = ("draw the mask with uniform=True (ebcore.draw_mask(model, ratio, uniform=True)), "
              "or save with format='ebcore' (ebcore.io.save_pruned(model, path)), which holds any widths")


def _width(b: BlockSpec) -> str:
    kv = f" on {b.kv_heads} KV heads" if b.grouped else ""
    return f"{b.num_heads} heads{kv} and {b.num_channels} FFN channels"


def _one_width(blocks: list[BlockSpec], config_name: str) -> tuple[int, int]:
    """The (heads, channels) every block shares (and KV heads, under grouped-query attention), or
    NotPortableError naming the first block that differs."""
    first = blocks[0]
    for b in blocks[1:]:
        if (b.num_heads, b.kv_heads, b.num_channels) != (first.num_heads, first.kv_heads, first.num_channels):
            raise NotPortableError(
                f"layer {b.name} keeps {_width(b)}, but layer {first.name} keeps {_width(first)}: a {config_name} "
                f"has one width for all layers, so this model cannot be a plain Hugging Face checkpoint; "
                f"{WHAT_WORKS}.")
    return first.num_heads, first.num_channels


def _heads_not_pruned(block: BlockSpec, dense_heads: int, width: int, config_name: str, rule: str) -> None:
    """NotPortableError if `block` lost heads in a family whose config derives the head size from the head count."""
    if block.num_heads == dense_heads:
        return
    raise NotPortableError(
        f"layer {block.name} keeps {block.num_heads} of {dense_heads} attention heads (head size {block.head_dim}), "
        f"but a {config_name} cannot hold a head size: this family computes it as {rule} = {width} / "
        f"{block.num_heads} = {width / block.num_heads:g}, so a config with {block.num_heads} heads would not "
        f"fit these weights. Prune FFN channels only for this family (draw_mask(model, head_ratio=0, ffn_ratio=p, "
        "uniform=True)), or save with format='ebcore' (ebcore.io.save_pruned(model, path)).")


def _vit_fields(config: PretrainedConfig, blocks: list[BlockSpec]) -> dict:
    heads, channels = _one_width(blocks, "ViTConfig")
    fields = {"num_attention_heads": heads, "intermediate_size": channels}
    if heads * blocks[0].head_dim != config.hidden_size or hasattr(config, "head_dim"):
        fields["head_dim"] = blocks[0].head_dim  # ViTAttention reads config.head_dim (else hidden / heads)
    return fields


def _bert_like_fields(config: PretrainedConfig, blocks: list[BlockSpec]) -> dict:
    name = type(config).__name__
    _, channels = _one_width(blocks, name)
    for b in blocks:
        _heads_not_pruned(b, config.num_attention_heads, config.hidden_size, name, "hidden_size / num_attention_heads")
    return {"intermediate_size": channels}


def _gpt2_fields(config: PretrainedConfig, blocks: list[BlockSpec]) -> dict:
    _, channels = _one_width(blocks, "GPT2Config")
    for b in blocks:
        _heads_not_pruned(b, config.n_head, config.n_embd, "GPT2Config", "n_embd / n_head")
    return {"n_inner": channels}


def _swin_fields(config: PretrainedConfig, blocks: list[BlockSpec]) -> dict:
    """Heads must be the dense per-stage counts; one mlp_ratio r must give int(r * width) = kept channels in
    every block (width: the block's stage width, fc1's input size)."""
    stages = [s for s, depth in enumerate(config.depths) for _ in range(depth)]
    for b, s in zip(blocks, stages):
        _heads_not_pruned(b, config.num_heads[s], b.fc1.in_features, "SwinConfig",
                          f"stage width / num_heads[{s}]")
    # int(r * w) == c  <=>  c / w <= r < (c + 1) / w, for every block.
    low = max(b.num_channels / b.fc1.in_features for b in blocks)
    high = min((b.num_channels + 1) / b.fc1.in_features for b in blocks)
    for r in (config.mlp_ratio, low, (low + high) / 2):
        if all(int(r * b.fc1.in_features) == b.num_channels for b in blocks):
            return {"mlp_ratio": r}
    worst = min(blocks, key=lambda b: (b.num_channels + 1) / b.fc1.in_features)
    best = max(blocks, key=lambda b: b.num_channels / b.fc1.in_features)
    raise NotPortableError(
        f"layer {best.name} keeps {best.num_channels} FFN channels of its width {best.fc1.in_features} (mlp_ratio "
        f">= {low:.6g}) but layer {worst.name} keeps {worst.num_channels} of {worst.fc1.in_features} (mlp_ratio < "
        f"{high:.6g}): a SwinConfig has one mlp_ratio for all stages, and no single value gives both widths; "
        f"{WHAT_WORKS}.")


def _decoder_fields(config: PretrainedConfig, blocks: list[BlockSpec]) -> dict:
    """Llama, Qwen2, Mistral, Gemma: heads, KV heads and head_dim are all config fields (the attention reads
    config.head_dim); query head h reads KV head h // (heads / KV heads), the order ebcore's pruning keeps."""
    heads, channels = _one_width(blocks, type(config).__name__)
    return {"num_attention_heads": heads, "num_key_value_heads": blocks[0].kv_heads, "head_dim": blocks[0].head_dim,
            "intermediate_size": channels}


# family -> config fields of the pruned model (raises NotPortableError). A new family adds its entry here.
EXPORTS: dict[str, Callable[[PretrainedConfig, list[BlockSpec]], dict]] = {
    "vit": _vit_fields, "bert": _bert_like_fields, "roberta": _bert_like_fields, "gpt2": _gpt2_fields,
    "swin": _swin_fields, **{family: _decoder_fields for family in DECODER_FAMILIES},
}


def hf_config(model: nn.Module) -> PretrainedConfig:
    """A copy of `model.config` rewritten to the model's current widths, or NotPortableError."""
    adapter = get_adapter(model)
    if adapter.family not in EXPORTS:
        raise NotPortableError(f"format='hf' does not know how to write a {adapter.family} config yet; save with "
                               "format='ebcore'.")
    blocks = adapter.blocks(model, allow_conv1d=True)
    config = copy.deepcopy(model.config)
    for key, value in EXPORTS[adapter.family](config, blocks).items():
        setattr(config, key, value)
    config.architectures = [type(model).__name__]
    validate = getattr(config, "validate", None)  # transformers' own checks (strict configs), run by save_pretrained
    try:
        if callable(validate):
            validate()
    except (ValueError, TypeError, StrictDataclassError) as err:
        b = blocks[0]
        raise NotPortableError(
            f"layer {b.name} keeps {_width(b)} (head size {b.head_dim}), and every layer the same, but transformers "
            f"refuses a {type(config).__name__} with these widths: {str(err).strip().splitlines()[-1].strip()} "
            "Choose a ratio whose kept head count the config accepts, prune FFN channels only (head_ratio=0), or "
            "save with format='ebcore' (ebcore.io.save_pruned(model, path)).") from None
    return config


def _state_for(fresh: nn.Module, model: nn.Module) -> dict[str, torch.Tensor]:
    """`model`'s state dict in `fresh`'s layout: a Linear of a prepared GPT-2 goes back to Conv1D's (in, out)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    source = dict(model.named_modules())
    for name, module in fresh.named_modules():
        if isinstance(module, Conv1D) and isinstance(source.get(name), nn.Linear):
            state[f"{name}.weight"] = state[f"{name}.weight"].t().contiguous()  # (out, in) -> (in, out)
    return state


@torch.no_grad()
def _outputs(model: nn.Module, inputs: dict) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        out = model(**inputs)
    finally:
        model.train(was_training)
    return (out.logits if hasattr(out, "logits") else out[0]).float()


def _check_same(expected: torch.Tensor, actual: torch.Tensor, low_precision: bool, what: str) -> None:
    tol = 5e-2 if low_precision else 1e-4
    if expected.shape != actual.shape or not torch.allclose(actual, expected, rtol=tol, atol=tol):
        gap = (actual - expected).abs().max().item() if expected.shape == actual.shape else "shape"
        raise CheckpointError(f"format='hf': {what} differs from the pruned model's outputs (max gap {gap}); "
                              "nothing was written. Save with format='ebcore' and report this as a bug.")


def write_hf(model: nn.Module, path: Path) -> Path:
    """Write `model` to folder `path` (already checked by save_pruned) as a plain Hugging Face checkpoint.
    The global RNG is left as it was (building the stock model initializes weights), so saving mid-run
    does not change the rest of the run."""
    with torch.random.fork_rng(devices=[]):  # the models are built on the CPU
        return _write_hf(model, path)


def _write_hf(model: nn.Module, path: Path) -> Path:
    adapter = get_adapter(model)
    config = hf_config(model)
    params = list(model.parameters())
    device = params[0].device
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.float32)
    fresh = type(model)(config).to(dtype)          # the stock class built from the written config
    try:
        fresh.load_state_dict(_state_for(fresh, model), strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"format='hf': the config written for this model does not rebuild its shapes "
                              f"({err}); save with format='ebcore'.") from None
    fresh.to(device)
    inputs = adapter.example_inputs(model)
    expected = _outputs(model, inputs)
    low = dtype in (torch.float16, torch.bfloat16)
    _check_same(expected, _outputs(fresh, inputs), low, "the stock model built from the written config")

    def write(tmp: Path) -> None:
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a bar per shard written and per check load is noise here
        try:
            fresh.save_pretrained(tmp)
            back = type(model).from_pretrained(tmp, local_files_only=True).to(device)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        _check_same(expected, _outputs(back, inputs), low, "the checkpoint loaded back with from_pretrained")
    return atomic_folder(path, write)
