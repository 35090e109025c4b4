"""Benchmark: what structured pruning with ebcore buys at inference, and what scoring costs in training.

For each family (ViT, Swin, GPT-2 [GPT2ForSequenceClassification], RoBERTa), built by the study's builders
(`ebcore.study.models`, see `_common.SIZES`) with seeded random init (no downloads), and each ratio p (default
0.3 and 0.5; layerwise, heads and FFN channels both at p, magnitude scores), it measures:

- parameter ratio pruned / dense (`ebcore.count_parameters`);
- FLOPs ratio pruned / dense per sample (per text sequence length), counted two ways on a batch of one:
  * `torch_pruning.utils.count_ops_and_params` (module hooks: Linear/Conv/LayerNorm MACs; it does not see
    the attention matmuls, which are functional ops; with dict inputs it cannot read the batch size and
    assumes 1, so it is given a batch of one),
  * `ebcore.measure.flops_per_sample`: `torch.utils.flop_counter.FlopCounterMode` (aten ops: every matmul,
    attention included) on a copy switched to eager attention, because the CPU SDPA kernel has no FLOP
    formula in PyTorch;
  the aten count is the one the speedup is judged against;
- latency, dense vs pruned, at each batch size (default 1, 8, 64) and, for text, each sequence length
  (default 128, 512): one forward of the batch under `torch.inference_mode()`, the dense and pruned models
  interleaved (dense, p=0.3, p=0.5, dense, p=0.3, p=0.5, ...) after warm-up rounds, for as many rounds as
  fit in `--cell-seconds` (between `--min-repeats` and `--repeats`); speedup = median dense time / median
  pruned time, efficiency = speedup / (1 / FLOPs ratio), goal >= 0.9 where the dense batch does at least
  `--min-gflops` of work (`judged`; below that a forward is bound by per-op overhead); `speedup_min`, the
  ratio of the fastest times, is a check on a shared, noisy machine;
- for a Llama decoder with grouped-query attention (`_decode.py`): tokens per second of greedy `generate`
  (KV cache on, `--prompt-len` + `--new-tokens`), dense vs pruned, at `--gen-batch-sizes` (default 1, 8);
- the cost of one scoring pass (`ebcore.score_model(graph)`, the graph built once beforehand; its build
  time is reported separately) relative to one training step (forward + backward + AdamW step on a batch
  of `--cost-batch-size`), and as a fraction of an epoch of `--epoch-samples` samples (goal < 1%).

    .venv/bin/python bench/prune_speed.py --threads 1          # small models, CPU: a few minutes
    .venv/bin/python bench/prune_speed.py --size base          # ViT-B/16, Swin-T, gpt2/roberta-base, Llama-1B: GPU
    .venv/bin/python bench/prune_speed.py --families vit gpt2 --batch-sizes 8 --seq-lens 128 --decoders --out /tmp/r.md

Results are printed and written to `--out` (Markdown), next to it with a .csv suffix (encoders), and with
a _generate.csv suffix (decoders).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
import torch_pruning as tp
import transformers as T
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _common puts the checkout on sys.path too, so ebcore imports without installing.
from _common import (MIN_GFLOPS, Batch, bench_parser, build_bench_model, interleaved_times, judged,  # noqa: E402
                     load_line, machine_lines, make_batch, min_gflops, pruned_copies, setup, sync, to_device,
                     to_markdown)
from _decode import add_decoder_options, bench_decoder  # noqa: E402
import ebcore as eb  # noqa: E402
from ebcore.graph import ModelGraph  # noqa: E402
from ebcore.measure import flops_per_sample  # noqa: E402


# --- models and batches ---------------------------------------------------------------------------

TEXT = ("gpt2", "roberta")


def inputs(family: str, config, batch_size: int, seq_len: int, device: torch.device,
           seed: int) -> tuple[Batch, torch.Tensor]:
    """A random batch (images, or token sequences of `seq_len`) and its labels, on `device`."""
    batch = make_batch(family, config, batch_size, seq_len, torch.Generator().manual_seed(seed))
    labels = batch.pop("labels")
    return to_device(batch, device), labels.to(device)


# --- measurements ---------------------------------------------------------------------------------

def tp_macs(model: nn.Module, inputs: Batch) -> float:
    """Torch-Pruning's op count (MACs of Linear/Conv/LayerNorm modules) for `inputs`."""
    with contextlib.redirect_stdout(io.StringIO()):  # "No positional inputs found ... batch size is 1"
        macs, _ = tp.utils.count_ops_and_params(model, inputs)
    return float(macs)


def train_step_seconds(model: nn.Module, batch: Batch, labels: torch.Tensor, device: torch.device,
                       warmup: int, steps: int) -> float:
    """Median seconds of forward + backward + AdamW step on `batch` (a copy of `model` is trained)."""
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def score_seconds(graph: ModelGraph, device: torch.device, repeats: int) -> float:
    """Median seconds of one `ebcore.score_model(graph)` pass."""
    times = []
    for _ in range(repeats + 1):  # the first pass is a warm-up
        sync(device)
        start = time.perf_counter()
        eb.score_model(graph)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def name(key: tuple[float, int]) -> str:
    """A pruned model's name in the timing loop: "0.3", or "0.3@64" with alignment."""
    p, align = key
    return f"{p:g}" + (f"@{align}" if align > 1 else "")


def latency_rows(family: str, dense: nn.Module, pruned: dict[tuple[float, int], nn.Module], seq_len: int | None,
                 args: argparse.Namespace, device: torch.device) -> tuple[list[dict], list[dict]]:
    """Structure rows (one per (ratio, align): parameter and FLOPs ratios at this sequence length) and latency
    rows (one per (ratio, align) and batch size: interleaved forward times of the dense and pruned models)."""
    seq = seq_len or 0
    one, _ = inputs(family, dense.config, 1, seq, device, args.seed + 1)
    dense_flops, dense_macs = flops_per_sample(dense, one), tp_macs(dense, one)
    dense_params = eb.count_parameters(dense)
    flops_ratio = {k: flops_per_sample(m, one) / dense_flops for k, m in pruned.items()}
    seq_col = str(seq_len) if seq_len else "-"
    structure = [{
        "family": family, "p": k[0], "align": k[1], "seq_len": seq_col, "params_M": dense_params / 1e6,
        "param_ratio": eb.count_parameters(m) / dense_params, "flops_ratio_tp": tp_macs(m, one) / dense_macs,
        "flops_ratio": flops_ratio[k], "GFLOPs/sample": dense_flops / 1e9,
    } for k, m in pruned.items()]

    rows = []
    models = {"dense": dense, **{name(k): m for k, m in pruned.items()}}
    for batch_size in args.batch_sizes:
        if seq_len and args.max_batch_tokens and batch_size * seq_len > args.max_batch_tokens:
            print(f"    {family} seq={seq_col} batch={batch_size}: skipped (--max-batch-tokens)", flush=True)
            continue
        batch, _ = inputs(family, dense.config, batch_size, seq, device, args.seed + 1)
        with torch.inference_mode():
            calls = {name: functools.partial(model, **batch) for name, model in models.items()}
            times = interleaved_times(calls, device, args.warmup, args.repeats, args.min_repeats, args.cell_seconds)
        t_dense = statistics.median(times["dense"])
        gflops_batch = batch_size * dense_flops / 1e9
        for key in pruned:
            t_pruned = statistics.median(times[name(key)])
            speedup = t_dense / t_pruned
            rows.append({
                "family": family, "p": key[0], "align": key[1], "seq_len": seq_col, "batch": batch_size,
                "GFLOPs/batch": gflops_batch, "dense_ms": 1e3 * t_dense, "pruned_ms": 1e3 * t_pruned,
                "speedup": speedup, "ideal": 1 / flops_ratio[key], "efficiency": speedup * flops_ratio[key],
                "speedup_min": min(times["dense"]) / min(times[name(key)]),  # best-of: less sensitive to contention
                "judged": "yes" if judged(gflops_batch, args, device) else "no", "rounds": len(times[name(key)]),
            })
        print(f"    {family} seq={seq_col} batch={batch_size}: {len(times['dense'])} rounds", flush=True)
    return structure, rows


def bench_family(family: str, args: argparse.Namespace, device: torch.device
                 ) -> tuple[list[dict], list[dict], dict]:
    """Structure rows, latency rows and the row of the cost table, for one family."""
    dense = build_bench_model(family, args.size, args.seed).to(device).eval()

    start = time.perf_counter()
    graph = ModelGraph.build(dense)  # dense is prepared already (GPT-2 Conv1D -> Linear): same kernels as pruned
    build_s = time.perf_counter() - start
    score_s = score_seconds(graph, device, args.score_repeats)

    pruned = {k: m.eval() for k, m in pruned_copies(dense, graph, args.ratios, args.aligns).items()}
    one, _ = inputs(family, dense.config, 1, args.cost_seq_len, device, args.seed + 1)
    with torch.inference_mode():  # sanity: pruned models still produce finite logits of the same shape
        reference = dense(**one).logits
        for key, model in pruned.items():
            out = model(**one).logits
            if out.shape != reference.shape or not torch.isfinite(out).all():
                raise RuntimeError(f"{family} pruned at {name(key)}: bad logits {tuple(out.shape)}")

    structure, rows = [], []
    for seq_len in (args.seq_lens if family in TEXT else [None]):
        s, r = latency_rows(family, dense, pruned, seq_len, args, device)
        structure += s
        rows += r

    batch, labels = inputs(family, dense.config, args.cost_batch_size, args.cost_seq_len, device, args.seed + 1)
    step_s = train_step_seconds(dense, batch, labels, device, args.train_warmup, args.train_steps)
    steps_per_epoch = math.ceil(args.epoch_samples / args.cost_batch_size)
    cost = {
        "family": family,
        "graph_build_s": build_s,
        "score_ms": 1e3 * score_s,
        "train_step_ms": 1e3 * step_s,
        "score/step": score_s / step_s,
        "score/epoch_%": 100 * score_s / (steps_per_epoch * step_s),
    }
    return structure, rows, cost


# --- driver ---------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = bench_parser(__doc__, families_optional=True)
    ap.add_argument("--size", choices=("tiny", "small", "base"), default="small",
                    help="tiny: the tests' models (ebcore.tiny), a smoke run; small: CPU; base: the study's, for a GPU")
    ap.add_argument("--aligns", nargs="+", type=int, default=[1],
                    help="alignment of the kept widths (ebcore.align): each ratio is pruned once per value")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 64], help="timed batch sizes")
    ap.add_argument("--seq-lens", nargs="+", type=int, default=[128, 512], help="tokens per text sequence")
    ap.add_argument("--repeats", type=int, default=15, help="most timed interleaved rounds per cell")
    ap.add_argument("--min-repeats", type=int, default=5, help="fewest timed interleaved rounds per cell")
    ap.add_argument("--cell-seconds", type=float, default=6.0,
                    help="time a cell's timed rounds aim at (rounds = clamp(this / one round, min, max))")
    ap.add_argument("--max-batch-tokens", type=int, default=None,
                    help="skip text cells of more tokens per batch than this (a CPU run's time limit)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first (1 if a round is long)")
    ap.add_argument("--min-gflops", type=float, default=None,
                    help=f"dense GFLOPs per batch from which the efficiency goal is judged (default {MIN_GFLOPS})")
    ap.add_argument("--cost-batch-size", type=int, default=32, help="batch of the scoring-cost training step")
    ap.add_argument("--cost-seq-len", type=int, default=128, help="tokens per sequence of that step (text)")
    ap.add_argument("--train-steps", type=int, default=5, help="timed training steps (median)")
    ap.add_argument("--train-warmup", type=int, default=1)
    ap.add_argument("--score-repeats", type=int, default=10)
    ap.add_argument("--epoch-samples", type=int, default=10_000)
    add_decoder_options(ap)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.md")
    args = ap.parse_args(argv)
    longest = max(args.seq_lens + [args.cost_seq_len])
    if longest > 512:
        ap.error(f"sequence length {longest} is above 512: the bench text models (roberta) have positions for 512")
    if min(args.batch_sizes + [args.cost_batch_size]) < 1:
        ap.error("batch sizes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args)
    warnings.filterwarnings("ignore", module="torch_pruning")
    T.logging.set_verbosity_error()

    header = machine_lines(device)
    header.append(f"size={args.size}, batches={args.batch_sizes}, seq_lens={args.seq_lens} (text), "
                  f"ratios={args.ratios}, rounds per cell {args.min_repeats}..{args.repeats} "
                  f"(~{args.cell_seconds:g} s), "
                  f"warmup={args.warmup}, "
                  + (f"text cells over {args.max_batch_tokens} tokens per batch skipped, "
                     if args.max_batch_tokens else "")
                  + f"goal judged from {min_gflops(args, device):g} GFLOPs per dense batch; "
                  f"cost step: batch {args.cost_batch_size}, seq {args.cost_seq_len}, epoch={args.epoch_samples} "
                  f"samples = {math.ceil(args.epoch_samples / args.cost_batch_size)} steps")
    if args.decoders:
        header.append(f"decoders={args.decoders}: greedy generate at batches {args.gen_batch_sizes}, "
                      f"{args.prompt_len} prompt + {args.new_tokens} new tokens, KV cache on, "
                      + ("whole KV groups pruned" if args.kv_groups else "query heads pruned within KV groups"))
    print("\n".join(header), flush=True)

    start = time.perf_counter()
    structure, rows, costs = [], [], []
    for family in args.families:
        t0 = time.perf_counter()
        s, r, cost = bench_family(family, args, device)
        structure += s
        rows += r
        costs.append(cost)
        print(f"  {family}: {time.perf_counter() - t0:.1f} s", flush=True)
    generation = []
    for decoder in args.decoders:
        t0 = time.perf_counter()
        generation += bench_decoder(decoder, args, device)
        print(f"  {decoder}: {time.perf_counter() - t0:.1f} s", flush=True)
    total_s = time.perf_counter() - start

    sections = ["\n".join(header)]
    if rows:
        sections += [
            "Structure (pruned/dense per sample, on one sample of the sequence length):\n\n"
            + to_markdown(pd.DataFrame(structure)),
            "Latency (times are medians of one forward of the batch; speedup = dense_ms / pruned_ms; efficiency = "
            "speedup * flops_ratio, goal >= 0.9 where judged = yes; speedup_min = best dense / best pruned time):\n\n"
            + to_markdown(pd.DataFrame(rows)),
            "Scoring cost (score_model with a prebuilt graph vs one AdamW training step; goal score/epoch < 1%):\n\n"
            + to_markdown(pd.DataFrame(costs)),
        ]
    if generation:
        sections.append("Generation (greedy `generate`, KV cache on; tok_s = batch * new tokens / seconds of the whole "
                        "call, prefill included; tok_s_ratio = pruned / dense; efficiency = tok_s_ratio * flops_ratio; "
                        "ratio_min = best dense / best pruned call):\n\n" + to_markdown(pd.DataFrame(generation)))
    sections.append(f"total benchmark time: {total_s:.0f} s; at the end: {load_line()}\n")
    text = "\n\n".join(sections)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    written = [args.out]
    if rows:
        merged = (pd.DataFrame(rows).merge(pd.DataFrame(structure), on=["family", "p", "align", "seq_len"])
                  .merge(pd.DataFrame(costs), on="family"))
        written.append(args.out.with_suffix(".csv"))
        merged.to_csv(written[-1], index=False, float_format="%.4f")
    if generation:
        written.append(args.out.with_name(args.out.stem + "_generate.csv"))
        pd.DataFrame(generation).to_csv(written[-1], index=False, float_format="%.4f")
    print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
