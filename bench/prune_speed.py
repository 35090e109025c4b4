"""Benchmark: what structured pruning with ebcore buys at inference, and what scoring costs in training.

For each family (ViT, Swin, GPT-2 [GPT2ForSequenceClassification], RoBERTa), built by the study's builders
(`ebcore.study.models`, see `_common.SIZES`) with seeded random init (no downloads), and each ratio p (default 0.3 and 0.5; layerwise, heads and FFN
channels both at p, magnitude scores), it measures:

- parameter ratio pruned / dense (`ebcore.count_parameters`);
- FLOPs ratio pruned / dense per sample, counted two ways on a batch of one:
  * `torch_pruning.utils.count_ops_and_params` (module hooks: Linear/Conv/LayerNorm MACs; it does not see
    the attention matmuls, which are functional ops; with dict inputs it cannot read the batch size and
    assumes 1, so it is given a batch of one),
  * `ebcore.measure.flops_per_sample`: `torch.utils.flop_counter.FlopCounterMode` (aten ops: every matmul,
    attention included) on a copy switched to eager attention, because the CPU SDPA kernel has no FLOP
    formula in PyTorch;
  the aten count is the one the speedup is judged against;
- measured inference speedup dense / pruned: one realistic batch (default 32 images, or 32 sequences of
  128 tokens), `torch.inference_mode()`, warm-up forwards, then the dense and pruned models run
  interleaved (dense, p=0.3, p=0.5, dense, p=0.3, p=0.5, ...) for R repeats; speedup = median dense time
  / median pruned time, and efficiency = speedup / (1 / FLOPs ratio) (goal >= 0.9); `speedup_min`, the
  ratio of the fastest times, is shown too as a check on a shared, noisy machine;
- the cost of one scoring pass (`ebcore.score_model(graph)`, the graph built once beforehand; its build
  time is reported separately) relative to one training step (forward + backward + AdamW step on the
  same batch), and as a fraction of an epoch of `--epoch-samples` samples (goal < 1%).

    .venv/bin/python bench/prune_speed.py                    # small: ~40 s on 2 quiet cores, ~4 min shared
    .venv/bin/python bench/prune_speed.py --size base        # ViT-B/16, Swin-T, gpt2-small, roberta-base
    .venv/bin/python bench/prune_speed.py --families vit gpt2 --repeats 30 --threads 1 --out /tmp/r.md

Results are printed and written to `--out` (Markdown) and next to it with a .csv suffix.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch_pruning as tp
import transformers as T
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _common puts the checkout on sys.path too, so ebcore imports without installing.
from _common import (Batch, bench_parser, build_bench_model, machine_lines, make_batch, pruned_copies,  # noqa: E402
                     setup, sync, to_device, to_markdown)
import ebcore as eb  # noqa: E402
from ebcore.graph import ModelGraph  # noqa: E402
from ebcore.measure import flops_per_sample  # noqa: E402


# --- models and batches ---------------------------------------------------------------------------

@dataclass
class Workload:
    """A dense model and the batches it is measured on."""

    family: str
    model: nn.Module
    batch: Batch           # the timed batch (B samples)
    labels: torch.Tensor   # labels of that batch, for the training step
    one: Batch             # one sample, for FLOP counting


def make_workload(family: str, size: str, batch_size: int, seq_len: int, device: torch.device,
                  seed: int) -> Workload:
    model = build_bench_model(family, size, seed).to(device).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    batch = make_batch(family, model.config, batch_size, seq_len, gen)
    labels = batch.pop("labels")
    one = {k: v[:1] if torch.is_tensor(v) else v for k, v in batch.items()}
    return Workload(family, model, to_device(batch, device), labels.to(device), to_device(one, device))


# --- measurements ---------------------------------------------------------------------------------

def tp_macs(model: nn.Module, inputs: Batch) -> float:
    """Torch-Pruning's op count (MACs of Linear/Conv/LayerNorm modules) for `inputs`."""
    with contextlib.redirect_stdout(io.StringIO()):  # "No positional inputs found ... batch size is 1"
        macs, _ = tp.utils.count_ops_and_params(model, inputs)
    return float(macs)


def interleaved_forward_times(models: dict[str, nn.Module], batch: Batch, device: torch.device,
                              warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per forward of each model, the models taking turns in every repeat."""
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(warmup):
            for model in models.values():
                model(**batch)
        sync(device)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(**batch)
                sync(device)
                times[name].append(time.perf_counter() - start)
    return times


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


def bench_family(family: str, args: argparse.Namespace, device: torch.device) -> tuple[list[dict], dict]:
    """Rows of the pruning table (one per ratio) and the row of the cost table, for one family."""
    work = make_workload(family, args.size, args.batch_size, args.seq_len, device, args.seed)
    dense = work.model

    start = time.perf_counter()
    graph = ModelGraph.build(dense)  # dense is prepared already (GPT-2 Conv1D -> Linear): same kernels as pruned
    build_s = time.perf_counter() - start
    score_s = score_seconds(graph, device, args.score_repeats)

    pruned = {f"{p:g}": model.eval() for (p, _), model in pruned_copies(dense, graph, args.ratios).items()}
    with torch.inference_mode():  # sanity: pruned models still produce finite logits of the same shape
        reference = dense(**work.one).logits
        for key, model in pruned.items():
            out = model(**work.one).logits
            if out.shape != reference.shape or not torch.isfinite(out).all():
                raise RuntimeError(f"{family} pruned at p={key}: bad logits {tuple(out.shape)}")

    dense_params = eb.count_parameters(dense)
    dense_macs, dense_flops = tp_macs(dense, work.one), flops_per_sample(dense, work.one)
    times = interleaved_forward_times({"dense": dense, **pruned}, work.batch, device, args.warmup, args.repeats)
    t_dense = statistics.median(times["dense"])

    rows = []
    for key, model in pruned.items():
        flops_ratio = flops_per_sample(model, work.one) / dense_flops
        t_pruned = statistics.median(times[key])
        speedup = t_dense / t_pruned
        rows.append({
            "family": family,
            "p": float(key),
            "params_M": dense_params / 1e6,
            "param_ratio": eb.count_parameters(model) / dense_params,
            "flops_ratio_tp": tp_macs(model, work.one) / dense_macs,
            "flops_ratio": flops_ratio,
            "dense_ms": 1e3 * t_dense,
            "pruned_ms": 1e3 * t_pruned,
            "speedup": speedup,
            "ideal": 1 / flops_ratio,
            "efficiency": speedup * flops_ratio,
            "speedup_min": min(times["dense"]) / min(times[key]),  # best-of: less sensitive to contention
        })

    step_s = train_step_seconds(dense, work.batch, work.labels, device, args.train_warmup, args.train_steps)
    steps_per_epoch = math.ceil(args.epoch_samples / args.batch_size)
    cost = {
        "family": family,
        "GFLOPs/sample": dense_flops / 1e9,
        "graph_build_s": build_s,
        "score_ms": 1e3 * score_s,
        "train_step_ms": 1e3 * step_s,
        "score/step": score_s / step_s,
        "score/epoch_%": 100 * score_s / (steps_per_epoch * step_s),
    }
    return rows, cost


# --- driver ---------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = bench_parser(__doc__)
    ap.add_argument("--size", choices=("small", "base"), default="small")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128, help="tokens per text sequence")
    ap.add_argument("--repeats", type=int, default=15, help="timed interleaved forwards per model")
    ap.add_argument("--warmup", type=int, default=2, help="untimed forwards per model first")
    ap.add_argument("--train-steps", type=int, default=5, help="timed training steps (median)")
    ap.add_argument("--train-warmup", type=int, default=1)
    ap.add_argument("--score-repeats", type=int, default=10)
    ap.add_argument("--epoch-samples", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.md")
    args = ap.parse_args(argv)
    if args.size == "base" and args.seq_len > 512:
        ap.error("--seq-len above 512 does not fit roberta-base's positions")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args)
    warnings.filterwarnings("ignore", module="torch_pruning")
    T.logging.set_verbosity_error()

    header = machine_lines(device)
    header.append(f"size={args.size}, batch={args.batch_size}, seq_len={args.seq_len} (text), ratios={args.ratios}, "
                  f"repeats={args.repeats}, warmup={args.warmup}, epoch={args.epoch_samples} samples "
                  f"= {math.ceil(args.epoch_samples / args.batch_size)} steps")
    print("\n".join(header), flush=True)

    start = time.perf_counter()
    rows, costs = [], []
    for family in args.families:
        t0 = time.perf_counter()
        family_rows, cost = bench_family(family, args, device)
        rows += family_rows
        costs.append(cost)
        print(f"  {family}: {time.perf_counter() - t0:.1f} s", flush=True)
    total_s = time.perf_counter() - start

    speed = pd.DataFrame(rows)
    cost = pd.DataFrame(costs)
    speed_md = to_markdown(speed)
    cost_md = to_markdown(cost)
    text = (
        "\n".join(header) + "\n\n"
        "Pruning (ratios pruned/dense per sample; times are medians of one batch; efficiency = speedup * "
        "flops_ratio, goal >= 0.9; speedup_min = best dense / best pruned time):\n\n" + speed_md + "\n\n"
        "Scoring cost (score_model with a prebuilt graph vs one AdamW training step on the same batch; "
        "goal score/epoch < 1%):\n\n" + cost_md + "\n\n"
        f"total benchmark time: {total_s:.0f} s\n"
    )
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    csv = args.out.with_suffix(".csv")
    merged = speed.merge(cost, on="family")
    merged.to_csv(csv, index=False, float_format="%.4f")
    print(f"wrote {args.out} and {csv}")


if __name__ == "__main__":
    main()
