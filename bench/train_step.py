"""Benchmark: does a pruned model train faster per step, in fp32 and in bf16, with and without alignment?

For each family (ViT, Swin, GPT-2 [GPT2ForSequenceClassification], RoBERTa), built by the study's builders
(`ebcore.study.models`, see `_common.SIZES`) with seeded random init (no downloads), it times one training step (forward + backward + AdamW step, train
mode) of the dense model and of pruned copies at p = 0.3 and 0.5 (layerwise magnitude masks, heads and
FFN channels both at p), each drawn without alignment (align=1) and with alignment (default align=64:
kept FFN channels a multiple of 64, kept heads such that heads * head_dim is a multiple of 64; see
`ebcore.align`). Per precision (fp32, and bf16 autocast via `ebcore.study.precision`), the dense and pruned
models take turns in every repeat (dense, p=0.3, p=0.3 aligned, p=0.5, p=0.5 aligned, dense, ...);
each model's step time is the median over the repeats, after warm-up steps.

fp16 (CUDA only) is timed without a grad scaler (its cost is a few element-wise kernels).

Columns: `param_ratio` (pruned / dense parameters), `flops_ratio` (pruned / dense forward FLOPs per
sample, `ebcore.measure.flops_per_sample`), `dense_ms`, `pruned_ms` (median step times),
`speedup` = dense_ms / pruned_ms, `efficiency` = speedup x flops_ratio (1.0: the step time fell exactly
as the FLOPs did; goal >= 0.9 in bf16 with alignment on a GPU), `speedup_min` (ratio of the fastest
times: a check on a shared, noisy machine), `ffn_kept` / `heads_kept` (kept sizes of the first layer).

    python bench/train_step.py --sizes small --device cpu                 # CPU-sized models, a few minutes
    python bench/train_step.py --sizes study --device cuda --repeats 25   # ViT-S widths, Swin-T, gpt2-small, roberta-base
    python bench/train_step.py --families vit gpt2 --precisions bf16 --aligns 1 8 64 --out /tmp/steps.csv
    python bench/train_step.py --sizes study --no-timing --aligns 1 8 64      # kept sizes and ratios only

Study sizes: ViT-S widths (hidden 384, 12 layers, 6 heads, FFN 1536) on 32 px images with patch 4,
batch 256; Swin-T (embed 96, depths 2,2,6,2, heads 3,6,12,24) at 224 px, batch 64; gpt2-small
(768/12/12/3072) and roberta-base, 256 tokens, batch 32. Results go to `--out` (CSV) and are printed
as a Markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _common puts the checkout on sys.path too, so ebcore imports without installing.
from _common import (Batch, bench_parser, build_bench_model, machine_lines, make_batch, pruned_copies,  # noqa: E402
                     setup, sync, to_device, to_markdown)
import ebcore as eb  # noqa: E402
from ebcore.graph import ModelGraph  # noqa: E402
from ebcore.measure import flops_per_sample  # noqa: E402
from ebcore.study.precision import autocast, check_precision  # noqa: E402


@dataclass
class Size:
    """Batch of a family at a size (the model is `_common.SIZES[sizes][family]`)."""

    batch_size: int
    seq_len: int = 0  # text only


BATCHES = {
    "small": {"vit": Size(32), "swin": Size(16), "gpt2": Size(8, 128), "roberta": Size(8, 128)},
    "study": {"vit": Size(256), "swin": Size(64), "gpt2": Size(32, 256), "roberta": Size(32, 256)},
}


def interleaved_step_times(models: dict[str, nn.Module], batch: Batch, precision: str, device: torch.device,
                           warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per training step of each model (its own AdamW), the models taking turns in every repeat."""
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-5) for name, m in models.items()}

    def step(name: str) -> None:
        model, optimizer = models[name], optimizers[name]
        with autocast(precision, device):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for model in models.values():
        model.train()
    for _ in range(warmup):
        for name in models:
            step(name)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name in models:
            sync(device)
            start = time.perf_counter()
            step(name)
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def bench_family(family: str, args: argparse.Namespace, device: torch.device) -> list[dict]:
    size = BATCHES[args.sizes][family]
    # Prepared (GPT-2: Conv1D -> Linear, exact) in the dense model too, for a fair comparison.
    dense = build_bench_model(family, args.sizes, args.seed).to(device)
    config = dense.config
    gen = torch.Generator().manual_seed(args.seed + 1)
    batch_size = 1 if args.no_timing else size.batch_size
    batch = to_device(make_batch(family, config, batch_size, size.seq_len, gen), device)
    variants = pruned_copies(dense, ModelGraph.build(dense), args.ratios, args.aligns)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    dense_flops = flops_per_sample(dense, inputs)
    dense_params = eb.count_parameters(dense)
    static = {}
    for key, model in variants.items():
        block = ModelGraph.build(model, prepare=False).blocks[0]
        static[key] = {"param_ratio": eb.count_parameters(model) / dense_params,
                       "flops_ratio": flops_per_sample(model, inputs) / dense_flops,
                       "heads_kept": f"{block.num_heads}/{config.num_attention_heads if family != 'swin' else config.num_heads[0]}",
                       "ffn_kept": block.num_channels}
    rows = []
    if args.no_timing:  # kept sizes and ratios only (cheap: one forward of batch 1 per model)
        return [{"family": family, "sizes": args.sizes, "p": ratio, "align": align, **s}
                for (ratio, align), s in static.items()]
    for precision in args.precisions:
        models = {"dense": dense, **{f"p{r}_a{a}": m for (r, a), m in variants.items()}}
        times = interleaved_step_times(models, batch, precision, device, args.warmup, args.repeats)
        d_med, d_min = statistics.median(times["dense"]), min(times["dense"])
        for (ratio, align), _ in variants.items():
            t = times[f"p{ratio}_a{align}"]
            speedup = d_med / statistics.median(t)
            s = static[(ratio, align)]
            rows.append({"family": family, "sizes": args.sizes, "batch": size.batch_size, "precision": precision,
                         "p": ratio, "align": align, "heads_kept": s["heads_kept"], "ffn_kept": s["ffn_kept"],
                         "param_ratio": s["param_ratio"], "flops_ratio": s["flops_ratio"],
                         "dense_ms": 1e3 * d_med, "pruned_ms": 1e3 * statistics.median(t), "speedup": speedup,
                         "efficiency": speedup * s["flops_ratio"], "speedup_min": d_min / min(t)})
        print(f"  {family} {precision}: dense {1e3 * d_med:.1f} ms/step", flush=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = bench_parser(__doc__)
    ap.add_argument("--sizes", choices=("small", "study"), default="small")
    ap.add_argument("--aligns", nargs="+", type=int, default=[1, 64], help="align values to compare (1 = off)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="fp32, bf16, fp16 (CUDA only)")
    ap.add_argument("--repeats", type=int, default=7, help="timed interleaved steps per model (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    ap.add_argument("--no-timing", action="store_true",
                    help="only kept sizes, parameter and FLOPs ratios (no training steps)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "train_step.csv")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args)
    for p in args.precisions:
        check_precision(p, device)
    for line in machine_lines(device):
        print(line)
    start = time.perf_counter()
    rows = []
    for family in args.families:
        rows += bench_family(family, args, device)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(to_markdown(df))
    print(f"wall time {time.perf_counter() - start:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
