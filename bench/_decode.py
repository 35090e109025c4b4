"""The decoder part of prune_speed.py: tokens per second of greedy `generate` (KV cache on), dense vs pruned.

A Llama decoder with grouped-query attention (`transformers.LlamaForCausalLM`, seeded random init, no
downloads) is pruned by ebcore like the other families (layerwise magnitude masks at each ratio, heads and
FFN channels both at p; `ebcore.prune_model` verifies the result against the mask), then the dense and
pruned models take turns (dense, p=0.3, p=0.5, dense, ...) generating `--new-tokens` tokens after a random
prompt of `--prompt-len` tokens, at each of `--gen-batch-sizes`. The FLOPs ratio is counted on the whole
greedy `generate` call of one sequence (prefill and every decode step) by `torch.utils.flop_counter`
on eager-attention copies.

    rows = bench_decoder("llama", args, device)   # one row per ratio and batch size
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import statistics

import torch
import transformers as T
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from _common import interleaved_times, judged, pruned_copies
import ebcore as eb
from ebcore.graph import ModelGraph

DECODERS = ("llama",)
DECODER_SIZES: dict[str, dict[str, dict]] = {
    # CPU-friendly: hidden 256, 4 layers, 8 query heads sharing 2 KV heads (head_dim 32), SwiGLU FFN 688.
    "small": {"llama": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                            intermediate_size=688, vocab_size=1000, max_position_embeddings=512)},
    # Llama-3.2-1B widths (hidden 2048, 16 layers, 32 q / 8 KV heads of 64, FFN 8192, 128,256 tokens, tied
    # embeddings, rope theta 5e5; its llama3 rope scaling is left out): for a GPU.
    "base": {"llama": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                           head_dim=64, intermediate_size=8192, vocab_size=128256, max_position_embeddings=2048,
                           rope_theta=500000.0, tie_word_embeddings=True)},
}
_IDS = dict(bos_token_id=0, eos_token_id=0, pad_token_id=0)


def add_decoder_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--decoders", nargs="*", choices=DECODERS, default=list(DECODERS),
                    help="decoders whose `generate` is timed (none: skip)")
    ap.add_argument("--gen-batch-sizes", nargs="+", type=int, default=[1, 8], help="batch sizes of `generate`")
    ap.add_argument("--prompt-len", type=int, default=32, help="prompt tokens per sequence")
    ap.add_argument("--new-tokens", type=int, default=32, help="tokens generated per sequence (exactly)")
    ap.add_argument("--kv-groups", action="store_true",
                    help="prune whole KV groups (query heads with their k/v rows) instead of query heads within groups")


def build_decoder(name: str, size: str, seed: int) -> nn.Module:
    """The dense decoder `name` at `size` (a key of DECODER_SIZES), seeded random init, eval mode, CPU."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; choose from {DECODERS}")
    if size == "tiny":   # the tests' tiny Llama (ebcore.tiny): a smoke run in seconds
        from ebcore.tiny import tiny_model
        return tiny_model(name, seed)
    torch.manual_seed(seed)
    config = T.LlamaConfig(**DECODER_SIZES[size][name], **_IDS)
    return T.LlamaForCausalLM(config).eval()


def _generate(model: nn.Module, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy generation of exactly `new_tokens` tokens after `ids` (B, P), KV cache on: (B, P + new)."""
    return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                          min_new_tokens=new_tokens, do_sample=False, use_cache=True, pad_token_id=0)


@torch.no_grad()
def generate_flops(model: nn.Module, ids: torch.Tensor, new_tokens: int) -> int:
    """FLOPs of one greedy `generate` call on `ids` (prefill + decode steps), on an eager-attention copy."""
    counted = copy.deepcopy(model)
    with contextlib.suppress(Exception):
        counted.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        _generate(counted, ids, new_tokens)
    return int(counter.get_total_flops())


def kept_heads(dense: nn.Module, pruned: nn.Module) -> str:
    """Query and KV heads of the first layer, pruned / dense: "6/8 q, 2/2 kv"."""
    d, p = (eb.get_adapter(m).blocks(m)[0] for m in (dense, pruned))
    return f"{p.num_heads}/{d.num_heads} q, {p.kv_heads}/{d.kv_heads} kv"


def bench_decoder(name: str, args: argparse.Namespace, device: torch.device) -> list[dict]:
    """One row per ratio and `generate` batch size: tokens per second, dense vs pruned (interleaved)."""
    dense = build_decoder(name, args.size, args.seed).to(device).eval()
    graph = ModelGraph.build(dense)
    options = {"kv_groups": True} if args.kv_groups else {}
    copies = pruned_copies(dense, graph, args.ratios, **options)
    pruned = {f"{p:g}": model.eval() for (p, _), model in copies.items()}
    models = {"dense": dense, **pruned}
    gen = torch.Generator().manual_seed(args.seed + 1)
    vocab = dense.config.vocab_size
    one = torch.randint(3, vocab, (1, args.prompt_len), generator=gen).to(device)  # (1, P)
    with torch.inference_mode():  # sanity: every model generates exactly the asked number of tokens
        for key, model in models.items():
            out = _generate(model, one, args.new_tokens)
            if out.shape != (1, args.prompt_len + args.new_tokens):
                raise RuntimeError(f"{name} {key}: generate returned {tuple(out.shape)}")
    dense_flops = generate_flops(dense, one, args.new_tokens)
    flops_ratio = {k: generate_flops(m, one, args.new_tokens) / dense_flops for k, m in pruned.items()}
    dense_params = eb.count_parameters(dense)
    calls_per_generate = args.new_tokens  # one prefill forward and new_tokens - 1 decode forwards

    rows = []
    for batch_size in args.gen_batch_sizes:
        ids = torch.randint(3, vocab, (batch_size, args.prompt_len), generator=gen).to(device)  # (B, P)
        with torch.inference_mode():
            calls = {k: functools.partial(_generate, m, ids, args.new_tokens) for k, m in models.items()}
            times = interleaved_times(calls, device, args.warmup, args.repeats, args.min_repeats, args.cell_seconds)
        tokens = batch_size * args.new_tokens
        dense_tok_s = tokens / statistics.median(times["dense"])
        gflops_call = batch_size * dense_flops / calls_per_generate / 1e9
        for key, model in pruned.items():
            pruned_tok_s = tokens / statistics.median(times[key])
            ratio = pruned_tok_s / dense_tok_s
            rows.append({
                "family": name, "p": float(key), "batch": batch_size, "prompt": args.prompt_len,
                "new": args.new_tokens, "heads": kept_heads(dense, model), "params_M": dense_params / 1e6,
                "param_ratio": eb.count_parameters(model) / dense_params, "flops_ratio": flops_ratio[key],
                "GFLOPs/forward": gflops_call, "dense_tok_s": dense_tok_s,
                "pruned_tok_s": pruned_tok_s, "tok_s_ratio": ratio,
                "efficiency": ratio * flops_ratio[key], "ratio_min": min(times["dense"]) / min(times[key]),
                "judged": "yes" if judged(gflops_call, args, device) else "no", "rounds": len(times[key]),
            })
        print(f"    {name} generate batch={batch_size}: {len(times['dense'])} rounds", flush=True)
    return rows
