"""Tiny, randomly initialised models of every supported family, and example batches that fit them: one
registry shared by the tests, the property tests, the benchmarks' smoke runs and the examples.

    model = tiny_model("vit")                       # ViTForImageClassification, 2 layers, 3 heads, hidden 96
    model = tiny_model("bert", hidden_size=64, num_attention_heads=4)   # any config field overridden
    batch = tiny_batch("vit", batch=3)              # {"pixel_values": (3, 1, 16, 16)}
    labels = tiny_labels("llama", batch)            # causal LMs: the input ids; classifiers: 0, 1, 0, ...

The shapes are deliberately odd (3 or 6 heads, hidden 96 or 192, a Swin whose stages have different head
counts), so that code which assumes powers of two or equal heads per layer fails here first. Nothing is
downloaded: every model is built from a config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import transformers as T
from torch import nn

from .errors import InvalidArgumentError

TEXT_VOCAB = 101          # token ids of the tiny text models: 0 (pad/bos/eos) .. 100
IMAGE_SIZE = 16           # pixels of the tiny vision models (one channel)


@dataclass(frozen=True)
class TinyConfig:
    """One tiny model: its transformers config class, the model class and the config fields."""

    name: str
    config_class: Callable[..., T.PretrainedConfig]
    model_class: Callable[[T.PretrainedConfig], nn.Module]
    fields: dict[str, Any] = field(default_factory=dict)
    modality: str = "text"          # "text" (input_ids, attention_mask) or "image" (pixel_values)
    task: str = "classification"    # or "causal_lm": the labels of a training batch are its input_ids


_TEXT_IDS = dict(bos_token_id=0, eos_token_id=0, pad_token_id=0)
_DECODER = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=8, intermediate_size=112,
                vocab_size=TEXT_VOCAB, max_position_embeddings=64, **_TEXT_IDS)
TINY: dict[str, TinyConfig] = {c.name: c for c in (
    TinyConfig("vit", T.ViTConfig, T.ViTForImageClassification,
               dict(hidden_size=96, num_hidden_layers=2, num_attention_heads=3, intermediate_size=192,
                    image_size=IMAGE_SIZE, patch_size=4, num_channels=1, num_labels=10), "image"),
    TinyConfig("swin", T.SwinConfig, T.SwinForImageClassification,
               dict(image_size=IMAGE_SIZE, patch_size=2, num_channels=1, embed_dim=24, depths=[2, 1],
                    num_heads=[2, 6], window_size=4, num_labels=10, mlp_ratio=3.0), "image"),
    TinyConfig("gpt2", T.GPT2Config, T.GPT2ForSequenceClassification,
               dict(n_embd=192, n_layer=2, n_head=6, vocab_size=TEXT_VOCAB, n_positions=32, n_inner=288,
                    num_labels=2, **_TEXT_IDS)),
    TinyConfig("gpt2_lm", T.GPT2Config, T.GPT2LMHeadModel,
               dict(n_embd=192, n_layer=2, n_head=6, vocab_size=TEXT_VOCAB, n_positions=32, n_inner=288,
                    num_labels=2, **_TEXT_IDS), task="causal_lm"),
    TinyConfig("roberta", T.RobertaConfig, T.RobertaForSequenceClassification,
               dict(hidden_size=96, num_hidden_layers=2, num_attention_heads=3, intermediate_size=160,
                    vocab_size=TEXT_VOCAB, max_position_embeddings=40, num_labels=2)),
    TinyConfig("bert", T.BertConfig, T.BertForSequenceClassification,
               dict(hidden_size=192, num_hidden_layers=2, num_attention_heads=6, intermediate_size=256,
                    vocab_size=TEXT_VOCAB, max_position_embeddings=40, num_labels=3)),
    # Decoders with grouped-query attention (ebcore.decoders): 8 query heads on 2 KV heads (4 per group),
    # Qwen2 6 on 2 (3 per group, biased q/k/v), Gemma 4 on 1 (multi-query); head dim 16, RoPE, gated MLP.
    TinyConfig("llama", T.LlamaConfig, T.LlamaForCausalLM, dict(_DECODER, num_key_value_heads=2), task="causal_lm"),
    TinyConfig("llama_cls", T.LlamaConfig, T.LlamaForSequenceClassification,
               dict(_DECODER, num_key_value_heads=2, num_labels=2)),
    TinyConfig("qwen2", T.Qwen2Config, T.Qwen2ForCausalLM,
               dict(_DECODER, hidden_size=96, num_attention_heads=6, num_key_value_heads=2, intermediate_size=160),
               task="causal_lm"),
    TinyConfig("mistral", T.MistralConfig, T.MistralForCausalLM,
               dict(_DECODER, num_key_value_heads=2, sliding_window=6), task="causal_lm"),
    TinyConfig("gemma", T.GemmaConfig, T.GemmaForCausalLM,
               dict(_DECODER, hidden_size=64, num_attention_heads=4, num_key_value_heads=1, head_dim=16),
               task="causal_lm"),
)}


def tiny_config(name: str, **overrides: Any) -> T.PretrainedConfig:
    """The transformers config of tiny model `name`, with `overrides` applied to its fields."""
    return _entry(name).config_class(**{**_entry(name).fields, **overrides})


def tiny_model(name: str, seed: int = 0, **overrides: Any) -> nn.Module:
    """A freshly initialised (seeded) tiny model `name` in eval mode; `overrides` change config fields."""
    entry = _entry(name)
    torch.manual_seed(seed)
    return entry.model_class(tiny_config(name, **overrides)).eval()


def tiny_batch(name: str, batch: int = 3, seed: int = 1, seq_len: int = 9, padded: bool = True) -> dict:
    """An input batch for tiny model `name`: images (batch, 1, 16, 16), or token ids (batch, seq_len) with
    an attention mask; with `padded`, the first sequence ends in 3 padding positions."""
    g = torch.Generator().manual_seed(seed)
    if _entry(name).modality == "image":
        return {"pixel_values": torch.randn(batch, 1, IMAGE_SIZE, IMAGE_SIZE, generator=g)}
    ids = torch.randint(3, TEXT_VOCAB, (batch, seq_len), generator=g)   # (B, T)
    mask = torch.ones_like(ids)
    if padded:
        mask[0, -3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def tiny_labels(name: str, batch: dict) -> torch.Tensor:
    """Training labels for `batch` of tiny model `name`: the input ids (causal LMs) or classes 0, 1, 0, 1, ..."""
    entry = _entry(name)
    n = len(next(iter(batch.values())))
    if entry.task == "causal_lm":
        return batch["input_ids"].clone()
    return torch.arange(n) % 2


def _entry(name: str) -> TinyConfig:
    if name not in TINY:
        raise InvalidArgumentError(f"unknown tiny model {name!r}; choose one of {tuple(TINY)}")
    return TINY[name]
